package mqttout

import (
	"bufio"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// faultProxy sits between a client and a real broker to inject the one fault a
// broker cannot be made to show on cue: packets that leave the client but never
// arrive. In drop mode it forwards only the CONNECT packet of each connection
// (so reconnects succeed) and swallows every later client packet; Cut closes
// every connection, as a network failure would.
type faultProxy struct {
	ln     net.Listener
	target string
	URL    string

	drop      atomic.Bool
	swallowed atomic.Int64 // PUBLISH packets swallowed

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startFaultProxy(t testing.TB, brokerAddr string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fault proxy listen: %v", err)
	}
	p := &faultProxy{ln: ln, target: brokerAddr, URL: "tcp://" + ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// SetDrop switches drop mode on or off for every connection, present and future.
func (p *faultProxy) SetDrop(on bool) { p.drop.Store(on) }

// Swallowed returns how many PUBLISH packets drop mode has swallowed.
func (p *faultProxy) Swallowed() int64 { return p.swallowed.Load() }

// Cut closes every proxied connection.
func (p *faultProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

func (p *faultProxy) close() {
	_ = p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *faultProxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns[c] = struct{}{}
}

func (p *faultProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		broker, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.track(client)
		p.track(broker)
		p.wg.Add(2)
		go func() { // broker -> client, untouched
			defer p.wg.Done()
			_, _ = io.Copy(client, broker)
			_ = client.Close()
		}()
		go func() { // client -> broker, packet by packet
			defer p.wg.Done()
			p.forward(client, broker)
			_ = broker.Close()
		}()
	}
}

func (p *faultProxy) forward(client, broker net.Conn) {
	r := bufio.NewReader(client)
	first := true
	for {
		pkt, err := readPacket(r)
		if err != nil {
			return
		}
		if first || !p.drop.Load() {
			if _, err := broker.Write(pkt); err != nil {
				return
			}
		} else if pkt[0]>>4 == 3 { // PUBLISH
			p.swallowed.Add(1)
		}
		first = false
	}
}

// readPacket reads one MQTT control packet: a type byte, the remaining length
// as a variable byte integer, and that many bytes.
func readPacket(r *bufio.Reader) ([]byte, error) {
	head := make([]byte, 1, 5)
	var err error
	if head[0], err = r.ReadByte(); err != nil {
		return nil, err
	}
	n, mult := 0, 1
	for i := 0; i < 4; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		head = append(head, b)
		n += int(b&0x7f) * mult
		if b&0x80 == 0 {
			break
		}
		mult *= 128
	}
	pkt := make([]byte, len(head)+n)
	copy(pkt, head)
	if _, err := io.ReadFull(r, pkt[len(head):]); err != nil {
		return nil, err
	}
	return pkt, nil
}
