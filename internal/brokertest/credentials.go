package brokertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"maps"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// WritePasswordFile writes a Mosquitto password file for users (user name to
// password) into t.TempDir() and returns its path. The hashes are those
// mosquitto_passwd writes by default since Mosquitto 2.0 ("$7$": PBKDF2 with
// SHA-512, 101 iterations, 12-byte salt), made here so that tests do not need
// the mosquitto_passwd binary.
func WritePasswordFile(t testing.TB, users map[string]string) string {
	t.Helper()
	var out strings.Builder
	for _, name := range slices.Sorted(maps.Keys(users)) {
		if strings.ContainsAny(name, ":\n") {
			t.Fatalf("password file user %q: a name cannot hold ':' or a newline", name)
		}
		salt := make([]byte, 12)
		if _, err := rand.Read(salt); err != nil {
			t.Fatalf("password salt: %v", err)
		}
		hash, err := pbkdf2.Key(sha512.New, users[name], salt, 101, sha512.Size)
		if err != nil {
			t.Fatalf("password hash: %v", err)
		}
		out.WriteString(name + ":$7$101$" + base64.StdEncoding.EncodeToString(salt) + "$" +
			base64.StdEncoding.EncodeToString(hash) + "\n")
	}
	path := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(path, []byte(out.String()), 0o600); err != nil {
		t.Fatalf("write password file: %v", err)
	}
	return path
}

// WriteFile writes text to name in t.TempDir() and returns its path: for ACL
// files and the like.
func WriteFile(t testing.TB, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
	return path
}

// TLSFiles are the PEM files of a throwaway certificate authority and of the
// certificates it signed, all in one t.TempDir().
type TLSFiles struct {
	CAFile string // the CA's certificate
	// CertFile and KeyFile are the broker's: valid for 127.0.0.1, ::1 and
	// localhost.
	CertFile, KeyFile string
	// ClientCertFile and ClientKeyFile are a client certificate (common name
	// "herald") for a listener that requires one.
	ClientCertFile, ClientKeyFile string
}

// WriteTLSFiles makes a new CA (ECDSA P-256, valid for a day) and a broker and a
// client certificate signed by it. Each call makes a different CA, so the files
// of one call do not verify the broker of another.
func WriteTLSFiles(t testing.TB) TLSFiles {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "herald test CA " + dir},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("create CA certificate: %v", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("parse CA certificate: %v", err)
	}
	files := TLSFiles{CAFile: writePEM(t, dir, "ca.crt", "CERTIFICATE", caDER)}

	leaf := func(name string, tmpl *x509.Certificate) (certFile, keyFile string) {
		key := newKey(t)
		tmpl.SerialNumber = serial(t)
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatalf("create %s certificate: %v", name, err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatalf("marshal %s key: %v", name, err)
		}
		return writePEM(t, dir, name+".crt", "CERTIFICATE", der), writePEM(t, dir, name+".key", "PRIVATE KEY", keyDER)
	}
	files.CertFile, files.KeyFile = leaf("server", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	files.ClientCertFile, files.ClientKeyFile = leaf("client", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "herald"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return files
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatalf("certificate serial: %v", err)
	}
	return n
}

func writePEM(t testing.TB, dir, name, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
	return path
}
