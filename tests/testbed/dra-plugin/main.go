// A minimal DRA kubelet plugin for the real-node testbed: it stands in for NVIDIA's DRA driver
// (github.com/NVIDIA/k8s-dra-driver-gpu, which needs real GPUs) so pods can get the fake NVML's GPUs
// through Dynamic Resource Allocation and the kubelet's PodResources API reports them in
// dynamic_resources. It publishes one ResourceSlice for its node (pool = node name) and answers
// NodePrepareResources with NVIDIA's claim-scoped CDI device ids, writing each prepared claim's CDI
// spec where NVIDIA's driver (v25.12 and later) writes it: <cdi-root>/k8s.gpu.nvidia.com-claim_<uid>.yaml,
// cdi-root /var/run/cdi (its chart's CDI_ROOT), removed on unprepare. The spec's edits are environment
// variables only (no device nodes: there is no GPU); the testbed's containerd (1.6) has no CDI support
// and ignores CDI ids, so the files are for what reads the node, as on a real one. Device taints, as
// NVIDIA's driver (v0.4) sets them on an Xid, come from -taints-file. Test infrastructure only; never
// part of the product.
//
// Usage: fake-dra-plugin -node NAME -kubeconfig FILE -uuids UUID,UUID,... [-product NAME]
//
//	[-plugins-dir /var/lib/kubelet/plugins] [-registry-dir /var/lib/kubelet/plugins_registry]
//	[-cdi-root /var/run/cdi] [-taints-file FILE]
//
// The i-th UUID is the GPU of minor i (not necessarily NVML index i).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/dynamic-resource-allocation/kubeletplugin"
	"k8s.io/dynamic-resource-allocation/resourceslice"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// NVIDIA's driver name (cmd/gpu-kubelet-plugin/main.go DriverName), so what the product reads on a
// real cluster is what the testbed shows.
const driverName = "gpu.nvidia.com"

// cdiID is NVIDIA's claim-scoped CDI device name (cmd/gpu-kubelet-plugin/cdi.go GetClaimDeviceName):
// vendor k8s.gpu.nvidia.com, class claim, name <claim UID>-<device name>.
func cdiID(claim types.UID, device string) string {
	return fmt.Sprintf("k8s.%s/claim=%s-%s", driverName, claim, device)
}

// deviceName is NVIDIA's name for a full GPU (cmd/gpu-kubelet-plugin/deviceinfo.go CanonicalName):
// gpu-<minor>.
func deviceName(minor int) string { return fmt.Sprintf("gpu-%d", minor) }

// devices mirrors the attributes NVIDIA's driver publishes for a full GPU
// (cmd/gpu-kubelet-plugin/deviceinfo.go GpuInfo.Attributes, capacity from partitions.go
// fullGpuCapacity), with the fake NVML's values (tests/fake-nvml/fake_nvml.c: an H100 80GB on driver
// 580.95.05, CUDA 13.0). NVIDIA no longer publishes the minor or the index as attributes (commits
// "Remove minor number from advertised GPU attributes", "Remove GPU index for CDI spec generation /
// attribute advertisement"): the minor is only in
// the device name.
func devices(uuids []string, product string) []resourceapi.Device {
	str := func(s string) resourceapi.DeviceAttribute { return resourceapi.DeviceAttribute{StringValue: ptr.To(s)} }
	ver := func(s string) resourceapi.DeviceAttribute {
		return resourceapi.DeviceAttribute{VersionValue: ptr.To(s)}
	}
	out := make([]resourceapi.Device, 0, len(uuids))
	for minor, uuid := range uuids {
		out = append(out, resourceapi.Device{
			Name: deviceName(minor),
			Attributes: map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{
				"type":                  str("gpu"),
				"uuid":                  str(uuid),
				"productName":           str(product),
				"brand":                 str("Nvidia"),
				"architecture":          str("Hopper"),
				"cudaComputeCapability": ver("9.0.0"),
				"driverVersion":         ver("580.95.5"),
				"cudaDriverVersion":     ver("13.0.0"),
			},
			Capacity: map[resourceapi.QualifiedName]resourceapi.DeviceCapacity{
				"memory": {Value: *resource.NewQuantity(85520809984, resource.BinarySI)},
			},
		})
	}
	return out
}

type plugin struct {
	node    string
	devices map[string]string // device name -> GPU UUID
	cdiRoot string
	cancel  context.CancelCauseFunc
}

// specFile is NVIDIA's per-claim CDI spec name (CDI's GenerateTransientSpecName: <vendor>-<class>_<uid>).
func (p *plugin) specFile(claim types.UID) string {
	return filepath.Join(p.cdiRoot, fmt.Sprintf("k8s.%s-claim_%s.yaml", driverName, claim))
}

// writeSpec writes the claim's CDI spec atomically (a reader never sees half a file), root-owned 0644.
func (p *plugin) writeSpec(claim types.UID, devices []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "---\ncdiVersion: 0.5.0\nkind: k8s.%s/claim\ndevices:\n", driverName)
	for _, d := range devices {
		fmt.Fprintf(&b, "- name: %s-%s\n  containerEdits:\n    env:\n    - NVIDIA_VISIBLE_DEVICES=%s\n", claim, d, p.devices[d])
	}
	if err := os.MkdirAll(p.cdiRoot, 0o755); err != nil {
		return err
	}
	tmp := p.specFile(claim) + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p.specFile(claim))
}

// PrepareResourceClaims returns, per allocated device of this driver, NVIDIA's CDI id. A device this
// node does not have fails the claim (the kubelet then retries), as a real driver would.
func (p *plugin) PrepareResourceClaims(ctx context.Context, claims []*resourceapi.ResourceClaim) (map[types.UID]kubeletplugin.PrepareResult, error) {
	out := make(map[types.UID]kubeletplugin.PrepareResult, len(claims))
	for _, c := range claims {
		var r kubeletplugin.PrepareResult
		for _, d := range c.Status.Allocation.Devices.Results {
			if d.Driver != driverName {
				continue
			}
			if _, ok := p.devices[d.Device]; d.Pool != p.node || !ok {
				r.Err = fmt.Errorf("device %s/%s is not on node %s", d.Pool, d.Device, p.node)
				break
			}
			r.Devices = append(r.Devices, kubeletplugin.Device{
				Requests:     []string{d.Request},
				PoolName:     d.Pool,
				DeviceName:   d.Device,
				CDIDeviceIDs: []string{cdiID(c.UID, d.Device)},
			})
		}
		if r.Err == nil && len(r.Devices) > 0 {
			names := make([]string, 0, len(r.Devices))
			for _, d := range r.Devices {
				names = append(names, d.DeviceName)
			}
			r.Err = p.writeSpec(c.UID, names)
		}
		klog.FromContext(ctx).Info("prepared", "claim", klog.KObj(c), "uid", c.UID, "devices", len(r.Devices), "err", r.Err)
		out[c.UID] = r
	}
	return out, nil
}

// UnprepareResourceClaims removes the claims' CDI specs.
func (p *plugin) UnprepareResourceClaims(ctx context.Context, claims []kubeletplugin.NamespacedObject) (map[types.UID]error, error) {
	out := make(map[types.UID]error, len(claims))
	for _, c := range claims {
		klog.FromContext(ctx).Info("unprepared", "claim", c.String())
		if err := os.Remove(p.specFile(c.UID)); err != nil && !errors.Is(err, os.ErrNotExist) {
			out[c.UID] = err
			continue
		}
		out[c.UID] = nil
	}
	return out, nil
}

// taintsFrom reads FILE's lines `<device> <key>[=<value>]:<effect>`; a missing file means no taints. A taint
// keeps the time it was first seen, as a driver records when it tainted.
func taintsFrom(file string, seen map[string]metav1.Time) (map[string][]resourceapi.DeviceTaint, error) {
	text, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	out := map[string][]resourceapi.DeviceTaint{}
	for _, line := range strings.Split(string(text), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		kv, effect, ok := strings.Cut(f[len(f)-1], ":")
		if len(f) != 2 || !ok {
			return nil, fmt.Errorf("%s: want `<device> <key>[=<value>]:<effect>`, got %q", file, line)
		}
		key, value, _ := strings.Cut(kv, "=")
		at, ok := seen[line]
		if !ok {
			at = metav1.Now()
			seen[line] = at
		}
		out[f[0]] = append(out[f[0]], resourceapi.DeviceTaint{
			Key: key, Value: value, Effect: resourceapi.DeviceTaintEffect(effect), TimeAdded: &at,
		})
	}
	return out, nil
}

// watchTaints republishes the slice whenever FILE changes (polled: a test writes it from outside).
func watchTaints(ctx context.Context, file string, devs []resourceapi.Device, publish func([]resourceapi.Device)) {
	var last string
	seen := map[string]metav1.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(300 * time.Millisecond):
		}
		text, _ := os.ReadFile(file)
		if string(text) == last {
			continue
		}
		taints, err := taintsFrom(file, seen)
		if err != nil {
			klog.Error(err)
			continue
		}
		last = string(text)
		out := make([]resourceapi.Device, len(devs))
		for i, d := range devs {
			d.Taints = taints[d.Name]
			out[i] = d
		}
		klog.Infof("taints: %v", taints)
		publish(out)
	}
}

// HandleError: publishing errors are logged (the controller retries); anything fatal stops the plugin.
func (p *plugin) HandleError(ctx context.Context, err error, msg string) {
	klog.FromContext(ctx).Error(err, msg)
	if !errors.Is(err, kubeletplugin.ErrRecoverable) {
		p.cancel(fmt.Errorf("%s: %w", msg, err))
	}
}

func main() {
	node := flag.String("node", "", "the node's name (the ResourceSlice's node and pool)")
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig for the API (ResourceSlices, ResourceClaims)")
	uuids := flag.String("uuids", "", "comma-separated GPU UUIDs, in minor order (the fake NVML's)")
	product := flag.String("product", "NVIDIA H100 80GB HBM3", "productName attribute")
	pluginsDir := flag.String("plugins-dir", kubeletplugin.KubeletPluginsDir, "the kubelet's plugins directory")
	registryDir := flag.String("registry-dir", kubeletplugin.KubeletRegistryDir, "the kubelet's plugin registry directory")
	cdiRoot := flag.String("cdi-root", "/var/run/cdi", "where prepared claims' CDI specs go (NVIDIA's CDI_ROOT)")
	taintsFile := flag.String("taints-file", "", "device taints, `<device> <key>[=<value>]:<effect>` per line, polled")
	flag.Parse()
	if *node == "" || *kubeconfig == "" || *uuids == "" {
		klog.Fatal("-node, -kubeconfig and -uuids are required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		klog.Fatalf("kubeconfig: %v", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		klog.Fatalf("client: %v", err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; cancel(errors.New("signal")) }()

	devs := devices(strings.Split(*uuids, ","), *product)
	p := &plugin{node: *node, devices: map[string]string{}, cdiRoot: *cdiRoot, cancel: cancel}
	for _, d := range devs {
		p.devices[d.Name] = *d.Attributes["uuid"].StringValue
	}
	// The helper listens in the plugin's data directory but does not create it.
	dataDir := filepath.Join(*pluginsDir, driverName)
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		klog.Fatalf("%s: %v", dataDir, err)
	}
	helper, err := kubeletplugin.Start(ctx, p,
		kubeletplugin.DriverName(driverName),
		kubeletplugin.KubeClient(client),
		kubeletplugin.NodeName(*node),
		kubeletplugin.PluginDataDirectoryPath(dataDir),
		kubeletplugin.RegistrarDirectoryPath(*registryDir),
	)
	if err != nil {
		klog.Fatalf("start: %v", err)
	}
	// The slice is published by our own controller rather than helper.PublishResources, for its sync
	// delay: the kubelet wipes its node's slices once at startup (once it sees its Node), and a slice
	// published just before that wipe would come back only after the default 30 s.
	syncDelay := time.Second
	ctrl, err := resourceslice.StartController(ctx, resourceslice.Options{
		DriverName: driverName,
		KubeClient: client,
		Owner:      &resourceslice.Owner{APIVersion: "v1", Kind: "Node", Name: *node},
		Resources: &resourceslice.DriverResources{Pools: map[string]resourceslice.Pool{
			*node: {Slices: []resourceslice.Slice{{Devices: devs}}},
		}},
		SyncDelay: &syncDelay,
		ErrorHandler: func(ctx context.Context, err error, msg string) {
			klog.FromContext(ctx).Error(err, msg)
		},
	})
	if err != nil {
		klog.Fatalf("publish: %v", err)
	}
	if *taintsFile != "" {
		go watchTaints(ctx, *taintsFile, devs, func(d []resourceapi.Device) {
			ctrl.Update(&resourceslice.DriverResources{Pools: map[string]resourceslice.Pool{
				*node: {Slices: []resourceslice.Slice{{Devices: d}}},
			}})
		})
	}
	klog.Infof("%s serving %d devices on %s", driverName, len(devs), *node)
	<-ctx.Done()
	klog.Infof("stopping: %v", context.Cause(ctx))
	ctrl.Stop()
	helper.Stop()
}
