package brokertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Options configure a private broker beyond New's open, plain-TCP default.
type Options struct {
	// Listener is the security of the main listener (Broker.Port, Broker.URL).
	// The zero Security is New's: plain TCP, anonymous clients allowed.
	Listener Security
	// More adds listeners, each with its own security. Any turns on Mosquitto's
	// per_listener_settings, so every listener (the main one too) then has its
	// own password file, ACL file and allow_anonymous.
	More []Security
	// Extra lines are appended at the end of the config, after the last
	// listener (so listener options among them apply to that one).
	Extra []string
}

// Security is who may use a listener and how they reach it.
type Security struct {
	// TLS, if set, makes the listener speak TLS with TLS.CertFile and
	// TLS.KeyFile; its URL is then mqtts://.
	TLS *TLSFiles
	// RequireCertificate makes TLS clients present a certificate signed by
	// TLS.CAFile.
	RequireCertificate bool
	// PasswordFile, if set, is Mosquitto's password_file, and anonymous
	// clients are refused. WritePasswordFile writes one.
	PasswordFile string
	// ACLFile, if set, is Mosquitto's acl_file.
	ACLFile string
	// WebSockets makes the listener speak MQTT over WebSocket (what browsers
	// and Cocos games use); its URL is then ws:// (wss:// with TLS).
	// Mosquitto 2.0.11 does not start with only WebSocket listeners: keep the
	// main one plain, and add this one in More.
	WebSockets bool
}

// NewWith writes the config of a broker secured as opts says and returns it
// without starting it.
func NewWith(t testing.TB, opts Options) *Broker {
	t.Helper()
	if _, err := exec.LookPath("mosquitto"); err != nil {
		t.Fatalf("mosquitto is not on PATH (%v): run scripts/services.sh to install it", err)
	}
	dir := t.TempDir()
	var conf strings.Builder
	if len(opts.More) > 0 {
		conf.WriteString("per_listener_settings true\n") // must precede every security option
	}
	fmt.Fprintf(&conf, `set_tcp_nodelay true
max_queued_messages 1000000
max_inflight_messages 0
persistence true
persistence_location %s/
persistence_file mosquitto.db
log_dest stderr
log_type error
log_type warning
`, dir)
	if os.Geteuid() == 0 {
		conf.WriteString("user root\n") // Mosquitto otherwise drops to user mosquitto, who cannot write dir
	}
	b := &Broker{t: t, Dir: dir, out: &lockedBuffer{}}
	for _, sec := range append([]Security{opts.Listener}, opts.More...) {
		port := FreePort(t)
		scheme := "tcp"
		fmt.Fprintf(&conf, "listener %d 127.0.0.1\n", port)
		if sec.TLS != nil {
			scheme = "mqtts"
			fmt.Fprintf(&conf, "cafile %s\ncertfile %s\nkeyfile %s\n", sec.TLS.CAFile, sec.TLS.CertFile, sec.TLS.KeyFile)
			if sec.RequireCertificate {
				conf.WriteString("require_certificate true\n")
			}
		}
		if sec.WebSockets {
			conf.WriteString("protocol websockets\n")
			scheme = "ws"
			if sec.TLS != nil {
				scheme = "wss"
			}
		}
		fmt.Fprintf(&conf, "allow_anonymous %t\n", sec.PasswordFile == "")
		if sec.PasswordFile != "" {
			fmt.Fprintf(&conf, "password_file %s\n", sec.PasswordFile)
		}
		if sec.ACLFile != "" {
			fmt.Fprintf(&conf, "acl_file %s\n", sec.ACLFile)
		}
		b.ports = append(b.ports, port)
		b.Listeners = append(b.Listeners, scheme+"://127.0.0.1:"+strconv.Itoa(port))
	}
	for _, l := range opts.Extra {
		conf.WriteString(l + "\n")
	}
	b.Port, b.URL = b.ports[0], b.Listeners[0]
	b.conf = filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(b.conf, []byte(conf.String()), 0o600); err != nil {
		t.Fatalf("write mosquitto config: %v", err)
	}
	t.Cleanup(b.Kill)
	return b
}

// StartWith returns a private broker secured as opts says that accepts
// connections on every listener.
func StartWith(t testing.TB, opts Options) *Broker {
	t.Helper()
	b := NewWith(t, opts)
	b.Start()
	return b
}
