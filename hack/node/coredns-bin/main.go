// A CoreDNS with only the plugins the e2e node's cluster DNS needs (hack/build-node.sh): the
// kubernetes plugin answers <service>.<namespace>.svc.cluster.local from the API server; nothing
// is forwarded anywhere (no forward plugin), and it listens only where `bind` says.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

// In CoreDNS's own order (plugin.cfg): bind, ready, errors, kubernetes.
func init() {
	dnsserver.Directives = []string{"bind", "ready", "errors", "kubernetes"}
}

func main() { coremain.Run() }
