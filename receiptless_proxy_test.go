package main

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
)

// receiptlessLink is a TCP link to a real broker that refuses one kind of
// connection: those whose MQTT CONNECT names a client id starting with
// "herald-receipts-", the connection a replica consumes receipts on. A replica
// behind it publishes and checks the broker like any other but never reads a
// receipt, which the broker cannot be told to do: a shared subscription it
// refused by ACL would still be handed receipts, and drop them.
type receiptlessLink struct {
	ln     net.Listener
	target string
	URL    string

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startReceiptlessLink(t testing.TB, brokerAddr string) *receiptlessLink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("receiptless link: %v", err)
	}
	l := &receiptlessLink{ln: ln, target: brokerAddr, URL: "tcp://" + ln.Addr().String()}
	l.wg.Go(l.accept)
	t.Cleanup(l.close)
	return l
}

func (l *receiptlessLink) accept() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.track(c)
		l.wg.Go(func() { l.serve(c) })
	}
}

func (l *receiptlessLink) track(c net.Conn) {
	l.mu.Lock()
	l.conns = append(l.conns, c)
	l.mu.Unlock()
}

// serve reads the CONNECT packet, drops a receipts connection, and links any
// other to the broker both ways.
func (l *receiptlessLink) serve(client net.Conn) {
	defer client.Close()
	rd := bufio.NewReader(client)
	connect, id, ok := readConnect(rd)
	if !ok || strings.HasPrefix(id, "herald-receipts-") {
		return
	}
	broker, err := net.Dial("tcp", l.target)
	if err != nil {
		return
	}
	l.track(broker)
	defer broker.Close()
	if _, err := broker.Write(connect); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(broker, rd); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, broker); done <- struct{}{} }()
	<-done
}

// readConnect reads one MQTT 3.1.1 CONNECT packet and returns its bytes and
// client id.
func readConnect(rd *bufio.Reader) ([]byte, string, bool) {
	first, err := rd.ReadByte()
	if err != nil || first>>4 != 1 {
		return nil, "", false
	}
	packet := []byte{first}
	length, shift := 0, 0
	for {
		b, err := rd.ReadByte()
		if err != nil || shift > 21 {
			return nil, "", false
		}
		packet = append(packet, b)
		length |= int(b&0x7f) << shift
		shift += 7
		if b&0x80 == 0 {
			break
		}
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(rd, body); err != nil {
		return nil, "", false
	}
	packet = append(packet, body...)
	// Variable header: protocol name (2-byte length + name), level, flags,
	// keep-alive; then the payload, the client id first.
	if len(body) < 2 {
		return nil, "", false
	}
	at := 2 + int(binary.BigEndian.Uint16(body)) + 4
	if len(body) < at+2 {
		return nil, "", false
	}
	n := int(binary.BigEndian.Uint16(body[at:]))
	if len(body) < at+2+n {
		return nil, "", false
	}
	return packet, string(body[at+2 : at+2+n]), true
}

func (l *receiptlessLink) close() {
	_ = l.ln.Close()
	l.mu.Lock()
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
}
