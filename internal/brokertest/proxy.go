package brokertest

import (
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy relays TCP connections to a broker's listener, so that a test can cut
// its clients off without touching the broker, as a network failure would:
// Cut closes every relayed connection and refuses new ones (it closes them as
// they come) until Resume. Meanwhile the test changes what the broker holds,
// and the clients find the result when they come back. It relays bytes as they
// are, so MQTT over WebSocket works through it too.
type Proxy struct {
	URL  string // tcp://127.0.0.1:{port} of the proxy
	Port int

	ln      net.Listener
	target  string
	refused atomic.Bool
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// StartProxy relays to the broker listener on 127.0.0.1:port until the test
// ends.
func StartProxy(t testing.TB, port int) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: listen: %v", err)
	}
	p := &Proxy{ln: ln, target: "127.0.0.1:" + strconv.Itoa(port), conns: map[net.Conn]struct{}{}}
	p.Port = ln.Addr().(*net.TCPAddr).Port
	p.URL = "tcp://" + ln.Addr().String()
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Cut closes every relayed connection and refuses new ones until Resume. Once
// it returns, nothing more reaches the clients.
func (p *Proxy) Cut() {
	p.refused.Store(true)
	p.closeAll()
}

// Resume relays new connections again.
func (p *Proxy) Resume() { p.refused.Store(false) }

func (p *Proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

func (p *Proxy) close() {
	_ = p.ln.Close()
	p.closeAll()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.refused.Load() {
			_ = client.Close()
			continue
		}
		broker, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		if p.refused.Load() { // Cut came while dialing
			p.mu.Unlock()
			_ = client.Close()
			_ = broker.Close()
			continue
		}
		p.conns[client], p.conns[broker] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(client, broker)
		go p.pipe(broker, client)
	}
}

// pipe copies from src to dst until either ends, then closes both.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
}
