// Package azurite starts the pinned Azurite Table service (tools/node_modules) for `make run` and
// `make test`. Azurite is the real Table Storage emulator from Microsoft; this package only launches it,
// waits until it accepts connections and hands out the connection settings. It is development tooling:
// nothing in production imports it.
package azurite

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Account and key are Azurite's well-known development credentials (public, documented by Microsoft);
// they protect nothing and exist only on loopback.
const (
	Account = "devstoreaccount1"
	Key     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Options says how to start one Azurite Table instance.
type Options struct {
	Bin      string // path to azurite-table
	Port     int    // 0 picks a free loopback port
	Location string // workspace folder; "" keeps everything in memory
	// TLS serves HTTPS with a freshly generated self-signed certificate and enables Azurite's OAuth
	// ("basic") so that clients built from an account URL and a token credential can be exercised.
	TLS bool
	Dir string // where the certificate is written when TLS is set
}

// Instance is a running Azurite Table service.
type Instance struct {
	Port   int
	TLS    bool
	CAFile string // PEM of the self-signed certificate when TLS is set
	cmd    *exec.Cmd
	done   chan error
}

// ConnectionString is the explicit form aztables parses (it does not understand UseDevelopmentStorage=true).
func (i *Instance) ConnectionString() string {
	scheme := "http"
	if i.TLS {
		scheme = "https"
	}
	return fmt.Sprintf("DefaultEndpointsProtocol=%s;AccountName=%s;AccountKey=%s;TableEndpoint=%s;",
		scheme, Account, Key, i.AccountURL())
}

// AccountURL is the table service URL of the development account (path-style, as Azurite expects).
func (i *Instance) AccountURL() string {
	scheme := "http"
	if i.TLS {
		scheme = "https"
	}
	return fmt.Sprintf("%s://127.0.0.1:%d/%s", scheme, i.Port, Account)
}

// Start launches Azurite and returns once it accepts TCP connections.
func Start(ctx context.Context, o Options) (*Instance, error) {
	if _, err := os.Stat(o.Bin); err != nil {
		return nil, fmt.Errorf("find azurite (run 'npm ci --prefix tools'): %w", err)
	}
	port := o.Port
	if port == 0 {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		port = p
	}
	args := []string{"--tableHost", "127.0.0.1", "--tablePort", strconv.Itoa(port),
		"--disableTelemetry", "--silent", "--skipApiVersionCheck", "--loose"}
	if o.Location == "" {
		args = append(args, "--inMemoryPersistence")
	} else {
		if err := os.MkdirAll(o.Location, 0o700); err != nil {
			return nil, fmt.Errorf("create azurite workspace: %w", err)
		}
		args = append(args, "--location", o.Location)
	}
	inst := &Instance{Port: port, TLS: o.TLS, done: make(chan error, 1)}
	if o.TLS {
		certFile, keyFile, err := selfSigned(o.Dir)
		if err != nil {
			return nil, err
		}
		inst.CAFile = certFile
		args = append(args, "--cert", certFile, "--key", keyFile, "--oauth", "basic")
	}
	cmd := exec.Command(o.Bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// Its own process group, so that Stop also ends the node process behind the npm shim.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start azurite: %w", err)
	}
	inst.cmd = cmd
	go func() { inst.done <- cmd.Wait() }()

	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return inst, nil
		}
		select {
		case err := <-inst.done:
			return nil, fmt.Errorf("azurite exited before it was ready: %v", err)
		case <-ctx.Done():
			inst.Stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			inst.Stop()
			return nil, errors.New("azurite did not accept connections within 60s")
		}
	}
}

// Stop ends Azurite and everything it started. Safe to call more than once.
func (i *Instance) Stop() {
	if i == nil || i.cmd == nil || i.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-i.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-i.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-i.cmd.Process.Pid, syscall.SIGKILL)
		<-i.done
	}
	i.cmd = nil
}

// FreePort asks the kernel for a free loopback port. Another process could take it before Azurite binds
// it; on loopback in a test run that race is rare and shows as a clear start error.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func selfSigned(dir string) (certFile, keyFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "azurite.local"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", fmt.Errorf("create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("marshal key: %w", err)
	}
	certFile = filepath.Join(dir, "azurite-cert.pem")
	keyFile = filepath.Join(dir, "azurite-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return "", "", fmt.Errorf("write certificate: %w", err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", fmt.Errorf("write key: %w", err)
	}
	return certFile, keyFile, nil
}
