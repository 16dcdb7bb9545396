// Prints the kubelet's PodResources List (or, with -pod and -namespace, Get) response as JSON with the
// proto's field names (pod_resources, dynamic_resources, claim_resources, cdi_devices, ...): the
// real-node tests check what the kubelet reports independently of node-probe. Test infrastructure only;
// never part of the product.
//
// Usage: podresources-list [-socket /var/lib/kubelet/pod-resources/kubelet.sock] [-namespace NS -pod NAME]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	podresourcesapi "k8s.io/kubelet/pkg/apis/podresources/v1"
)

func main() {
	socket := flag.String("socket", "/var/lib/kubelet/pod-resources/kubelet.sock", "the kubelet's PodResources socket")
	ns := flag.String("namespace", "", "with -pod: Get this pod instead of List")
	pod := flag.String("pod", "", "with -namespace: Get this pod instead of List")
	flag.Parse()
	conn, err := grpc.NewClient("unix://"+*socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatalf("dial %s: %v", *socket, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := podresourcesapi.NewPodResourcesListerClient(conn)
	var resp proto.Message
	if *pod != "" {
		resp, err = c.Get(ctx, &podresourcesapi.GetPodResourcesRequest{PodName: *pod, PodNamespace: *ns})
	} else {
		resp, err = c.List(ctx, &podresourcesapi.ListPodResourcesRequest{})
	}
	if err != nil {
		log.Fatalf("podresources: %v", err)
	}
	out, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(resp)
	if err != nil {
		log.Fatalf("marshal: %v", err)
	}
	fmt.Fprintln(os.Stdout, string(out))
}
