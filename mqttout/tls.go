package mqttout

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
)

// TLSConfig names the PEM files Herald uses on a TLS connection to the broker
// (an ssl://, tls://, mqtts://, mqtt+ssl:// or tcps:// URL). The broker's
// certificate is always verified, against the CA file or else the system's
// roots, and must name the URL's host; there is no way to skip that. The files
// are read once, by Dial.
type TLSConfig struct {
	// CAFile holds the CA certificates that sign the broker's certificate.
	// Empty: the system's roots.
	CAFile string
	// CertFile and KeyFile are a client certificate and its unencrypted key,
	// for a broker that requires one (Mosquitto's require_certificate). Both or
	// neither.
	CertFile string
	KeyFile  string
}

// IsZero reports whether no TLS file is named.
func (t TLSConfig) IsZero() bool {
	return t == TLSConfig{}
}

// Build reads the files and returns a client configuration for TLS 1.2 and
// later that verifies the server against CAFile (or the system's roots) and
// presents the client certificate when one is given. It returns an error naming
// the file for a file it cannot read or parse, and for a CertFile without a
// KeyFile or the reverse.
func (t TLSConfig) Build() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqttout: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqttout: CA file %s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case t.CertFile != "" && t.KeyFile != "":
		pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqttout: load client certificate %s and key %s: %w", t.CertFile, t.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	case t.CertFile != "":
		return nil, errors.New("mqttout: client certificate file given without its key file")
	case t.KeyFile != "":
		return nil, errors.New("mqttout: client key file given without its certificate file")
	}
	return cfg, nil
}

// tlsFor returns the TLS configuration Dial gives paho for brokerURL: nil for a
// plain URL (and an error if TLS files were named for one, rather than silently
// connecting in clear), else t built, with ServerName set to the URL's host so
// that verification does not depend on how paho dials.
func tlsFor(brokerURL string, t TLSConfig) (*tls.Config, error) {
	u, err := url.Parse(brokerURL)
	if err != nil {
		return nil, fmt.Errorf("mqttout: parse broker URL: %w", err)
	}
	if !isTLSScheme(u.Scheme) {
		if !t.IsZero() {
			return nil, fmt.Errorf("mqttout: TLS files given but broker URL scheme %q is not TLS (use mqtts://, ssl:// or tls://)", u.Scheme)
		}
		return nil, nil
	}
	cfg, err := t.Build()
	if err != nil {
		return nil, err
	}
	cfg.ServerName = u.Hostname()
	return cfg, nil
}

// isTLSScheme reports whether paho (v1.5.1, netconn.go) dials scheme with TLS.
// wss:// (TLS too) is left out: Herald speaks MQTT over TCP.
func isTLSScheme(scheme string) bool {
	switch scheme {
	case "ssl", "tls", "mqtts", "mqtt+ssl", "tcps":
		return true
	}
	return false
}
