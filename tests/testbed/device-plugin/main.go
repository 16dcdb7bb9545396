// A minimal Kubernetes device plugin for the real-node testbed: it advertises one extended resource
// (default nvidia.com/gpu) whose device ids are the fake NVML's GPU UUIDs, so pods that request GPUs get
// device ids the kubelet's PodResources API reports and node-probe can map to GPUs. It stands in for
// NVIDIA's device plugin, which needs real GPUs. Test infrastructure only; never part of the product.
//
// Usage: fake-device-plugin -ids UUID,UUID,... [-resource nvidia.com/gpu] [-dir /var/lib/kubelet/device-plugins]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

type plugin struct {
	pluginapi.UnimplementedDevicePluginServer
	ids []string
}

func (p *plugin) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	return &pluginapi.DevicePluginOptions{}, nil
}

// ListAndWatch sends the device list once and keeps the stream open: the devices never change.
func (p *plugin) ListAndWatch(_ *pluginapi.Empty, s pluginapi.DevicePlugin_ListAndWatchServer) error {
	devs := make([]*pluginapi.Device, 0, len(p.ids))
	for _, id := range p.ids {
		devs = append(devs, &pluginapi.Device{ID: id, Health: pluginapi.Healthy})
	}
	if err := s.Send(&pluginapi.ListAndWatchResponse{Devices: devs}); err != nil {
		return err
	}
	<-s.Context().Done()
	return nil
}

// Allocate grants what the kubelet chose and sets NVIDIA_VISIBLE_DEVICES as NVIDIA's plugin does.
func (p *plugin) Allocate(_ context.Context, r *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	resp := &pluginapi.AllocateResponse{}
	for _, c := range r.ContainerRequests {
		resp.ContainerResponses = append(resp.ContainerResponses, &pluginapi.ContainerAllocateResponse{
			Envs: map[string]string{"NVIDIA_VISIBLE_DEVICES": strings.Join(c.DevicesIds, ",")},
		})
	}
	return resp, nil
}

func (p *plugin) PreStartContainer(context.Context, *pluginapi.PreStartContainerRequest) (*pluginapi.PreStartContainerResponse, error) {
	return &pluginapi.PreStartContainerResponse{}, nil
}

// serve listens on sock and registers with the kubelet, retrying while its registration socket appears.
func serve(sock, kubeletSock, resource string, ids []string) (*grpc.Server, error) {
	_ = os.Remove(sock)
	lis, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", sock, err)
	}
	srv := grpc.NewServer()
	pluginapi.RegisterDevicePluginServer(srv, &plugin{ids: ids})
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("unix://"+kubeletSock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		srv.Stop()
		return nil, fmt.Errorf("dial kubelet: %w", err)
	}
	defer conn.Close()
	var regErr error
	for i := 0; i < 100; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, regErr = pluginapi.NewRegistrationClient(conn).Register(ctx, &pluginapi.RegisterRequest{
			Version:      pluginapi.Version,
			Endpoint:     filepath.Base(sock),
			ResourceName: resource,
		})
		cancel()
		if regErr == nil {
			return srv, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	srv.Stop()
	return nil, fmt.Errorf("register with the kubelet: %w", regErr)
}

// identity of the file at path (its inode and change time: a new socket may reuse a removed one's inode
// number), the zero value when it is missing.
type identity struct {
	ino  uint64
	ctim syscall.Timespec
}

func inode(path string) identity {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return identity{}
	}
	return identity{st.Ino, st.Ctim}
}

func main() {
	ids := flag.String("ids", "", "comma-separated device ids (the fake NVML's GPU UUIDs)")
	resource := flag.String("resource", "nvidia.com/gpu", "extended resource name")
	dir := flag.String("dir", pluginapi.DevicePluginPath, "the kubelet's device-plugins directory")
	flag.Parse()
	if *ids == "" {
		log.Fatal("-ids is required")
	}
	sock := filepath.Join(*dir, "testbed-gpu.sock")
	kubeletSock := filepath.Join(*dir, "kubelet.sock")
	list := strings.Split(*ids, ",")
	// The kubelet's registration socket appears a moment after it starts.
	for inode(kubeletSock) == (identity{}) {
		time.Sleep(100 * time.Millisecond)
	}
	at := inode(kubeletSock)
	srv, err := serve(sock, kubeletSock, *resource, list)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("registered %s with %d devices", *resource, len(list))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	// A restarted kubelet makes a new kubelet.sock and removes every other socket of the directory: serve and
	// register again, as device plugins do (NVIDIA's watches the socket's creation).
	for {
		select {
		case <-sig:
			srv.Stop()
			_ = os.Remove(sock)
			return
		case <-time.After(300 * time.Millisecond):
		}
		now := inode(kubeletSock)
		if now == (identity{}) || now == at {
			continue
		}
		srv.Stop()
		if srv, err = serve(sock, kubeletSock, *resource, list); err != nil {
			log.Fatal(err)
		}
		at = now
		log.Printf("registered %s again with the restarted kubelet", *resource)
	}
}
