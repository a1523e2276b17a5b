package mqttout

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/brokertest"
)

func TestTLSConfigBuild(t *testing.T) {
	t.Parallel()
	files := brokertest.WriteTLSFiles(t)

	cfg, err := TLSConfig{}.Build()
	require.NoError(t, err)
	assert.Equal(t, uint16(tls.VersionTLS12), cfg.MinVersion)
	assert.Nil(t, cfg.RootCAs, "no CA file: the system's roots")
	assert.False(t, cfg.InsecureSkipVerify)

	cfg, err = TLSConfig{CAFile: files.CAFile, CertFile: files.ClientCertFile, KeyFile: files.ClientKeyFile}.Build()
	require.NoError(t, err)
	assert.NotNil(t, cfg.RootCAs)
	assert.Len(t, cfg.Certificates, 1)
	assert.False(t, cfg.InsecureSkipVerify)
}

func TestTLSConfigBuildRefusesBadFiles(t *testing.T) {
	t.Parallel()
	files := brokertest.WriteTLSFiles(t)
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600))
	missing := filepath.Join(dir, "missing.pem")

	for _, c := range []struct {
		name string
		cfg  TLSConfig
		want string
	}{
		{"missing CA file", TLSConfig{CAFile: missing}, missing},
		{"CA file without PEM", TLSConfig{CAFile: notPEM}, "holds no PEM certificate"},
		{"CA file holding a key", TLSConfig{CAFile: files.KeyFile}, "holds no PEM certificate"},
		{"certificate without key", TLSConfig{CertFile: files.ClientCertFile}, "without its key file"},
		{"key without certificate", TLSConfig{KeyFile: files.ClientKeyFile}, "without its certificate file"},
		{"missing certificate", TLSConfig{CertFile: missing, KeyFile: files.ClientKeyFile}, missing},
		{"certificate not PEM", TLSConfig{CertFile: notPEM, KeyFile: files.ClientKeyFile}, notPEM},
		{"key of another certificate", TLSConfig{CertFile: files.ClientCertFile, KeyFile: files.KeyFile}, "private key does not match"},
	} {
		_, err := c.cfg.Build()
		if assert.Error(t, err, c.name) {
			assert.Contains(t, err.Error(), c.want, c.name)
		}
	}
}

// Dial fails at once, naming the problem, for TLS files it cannot use and for
// TLS files given with a plain URL; it sets the server name from the URL.
func TestDialTLSSettings(t *testing.T) {
	t.Parallel()
	files := brokertest.WriteTLSFiles(t)
	for _, cfg := range []Config{
		{URL: "mqtts://127.0.0.1:1", TLS: TLSConfig{CAFile: filepath.Join(t.TempDir(), "missing.pem")}},
		{URL: "ssl://127.0.0.1:1", TLS: TLSConfig{CertFile: files.ClientCertFile}},
		{URL: "tcp://127.0.0.1:1", TLS: TLSConfig{CAFile: files.CAFile}},
	} {
		_, err := Dial(cfg)
		assert.Error(t, err, "%+v", cfg)
	}

	for _, scheme := range []string{"ssl", "tls", "mqtts", "mqtt+ssl", "tcps"} {
		cfg, err := tlsFor(scheme+"://broker.example:8883", TLSConfig{CAFile: files.CAFile})
		require.NoError(t, err, scheme)
		require.NotNil(t, cfg, scheme)
		assert.Equal(t, "broker.example", cfg.ServerName, scheme)
	}
	cfg, err := tlsFor("tcp://127.0.0.1:1883", TLSConfig{})
	require.NoError(t, err)
	assert.Nil(t, cfg, "no TLS for tcp://")
}
