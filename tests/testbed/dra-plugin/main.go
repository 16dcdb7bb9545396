// A minimal DRA kubelet plugin for the real-node testbed: it stands in for NVIDIA's DRA driver
// (github.com/NVIDIA/k8s-dra-driver-gpu, which needs real GPUs) so pods can get the fake NVML's GPUs
// through Dynamic Resource Allocation and the kubelet's PodResources API reports them in
// dynamic_resources. It publishes one ResourceSlice for its node (pool = node name) and answers
// NodePrepareResources with NVIDIA's claim-scoped CDI device ids. Nothing is written to disk: the
// testbed's containerd (1.6) has no CDI support and ignores CDI ids. Test infrastructure only; never
// part of the product.
//
// Usage: fake-dra-plugin -node NAME -kubeconfig FILE -uuids UUID,UUID,... [-product NAME]
//
//	[-plugins-dir /var/lib/kubelet/plugins] [-registry-dir /var/lib/kubelet/plugins_registry]
//
// The i-th UUID is the GPU of minor (and NVML index) i.
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
	devices map[string]bool
	cancel  context.CancelCauseFunc
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
			if d.Pool != p.node || !p.devices[d.Device] {
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
		klog.FromContext(ctx).Info("prepared", "claim", klog.KObj(c), "uid", c.UID, "devices", len(r.Devices), "err", r.Err)
		out[c.UID] = r
	}
	return out, nil
}

// UnprepareResourceClaims has nothing to undo: preparing wrote nothing.
func (p *plugin) UnprepareResourceClaims(ctx context.Context, claims []kubeletplugin.NamespacedObject) (map[types.UID]error, error) {
	out := make(map[types.UID]error, len(claims))
	for _, c := range claims {
		klog.FromContext(ctx).Info("unprepared", "claim", c.String())
		out[c.UID] = nil
	}
	return out, nil
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
	p := &plugin{node: *node, devices: map[string]bool{}, cancel: cancel}
	for _, d := range devs {
		p.devices[d.Name] = true
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
	klog.Infof("%s serving %d devices on %s", driverName, len(devs), *node)
	<-ctx.Done()
	klog.Infof("stopping: %v", context.Cause(ctx))
	ctrl.Stop()
	helper.Stop()
}
