// Package deploy holds the deployment assets of sqlcached, and no code: the
// Prometheus alert rules and their unit tests (prometheus/), the Grafana
// dashboard (grafana/), the systemd unit (systemd/), the container image
// (Dockerfile) and the Kubernetes manifest (kubernetes/). See README.md.
//
// Its tests hold the assets to the metrics sqlcached exports: the list of
// names and labels in deploy_test.go is the contract between the code that
// registers the metrics and the rules and panels that read them. They run
// promtool (Debian's prometheus package; scripts/test.sh installs it) on
// the rules, load the configuration in the Kubernetes manifest with
// internal/config, and check that the probes, the unit and the image name
// /healthz and /readyz where they should.
package deploy
