package mqttout

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"
)

const (
	// bufferedMax is how much a bufferedConn holds unwritten before a writer
	// waits: enough for a few hundred publishes of an envelope.
	bufferedMax = 256 << 10
	// closeFlushWait bounds how long Close waits for what is buffered (paho's
	// DISCONNECT) to be written.
	closeFlushWait = time.Second
)

// errConnClosed is what a bufferedConn answers writes with once closed.
var errConnClosed = errors.New("mqttout: network connection closed")

// bufferedConn is the network connection under a publishing paho client, with
// its reads buffered and its writes gathered. paho reads each packet with
// several small reads (three system calls for a PUBACK) and writes each packet
// with a write of its own: under a fan-out, those system calls were most of
// Herald's CPU. Writes are appended to a buffer that a goroutine of the
// connection writes out (flush); publishes made while it writes gather, so one
// system call carries many, while a lone publish on an idle connection is
// written at once.
//
// A write error is returned by the next Write, and closes the connection so
// that paho's reader notices too. paho's write deadline is replaced by one per
// flush (writeTimeout), which also bounds how long a writer waits for room.
type bufferedConn struct {
	net.Conn
	r            *bufio.Reader
	writeTimeout time.Duration

	mu      sync.Mutex
	room    *sync.Cond // signalled when the buffer was written out, or err was set
	buf     []byte     // written next by flush
	spare   []byte     // the buffer flush wrote last, reused
	err     error      // why writing stopped
	closing bool
	kick    chan struct{} // a write is waiting (capacity 1)
	flushed chan struct{} // closed when flush has returned
}

func newBufferedConn(c net.Conn, writeTimeout time.Duration) *bufferedConn {
	b := &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, 64<<10), writeTimeout: writeTimeout,
		kick: make(chan struct{}, 1), flushed: make(chan struct{})}
	b.room = sync.NewCond(&b.mu)
	go b.flush()
	return b
}

// Read reads through the buffer.
func (b *bufferedConn) Read(p []byte) (int, error) {
	return b.r.Read(p)
}

// Write queues p for flush; it waits while the buffer is full.
func (b *bufferedConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	for b.err == nil && len(b.buf) > 0 && len(b.buf)+len(p) > bufferedMax {
		b.room.Wait()
	}
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	b.buf = append(b.buf, p...)
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
	return len(p), nil
}

// SetDeadline sets the read deadline only: writes have flush's deadline.
func (b *bufferedConn) SetDeadline(t time.Time) error {
	return b.Conn.SetReadDeadline(t)
}

// SetWriteDeadline does nothing: writes have flush's deadline.
func (b *bufferedConn) SetWriteDeadline(time.Time) error {
	return nil
}

// flush writes the buffer out whenever it holds something, until a write fails
// or the connection is closed and written out.
func (b *bufferedConn) flush() {
	defer close(b.flushed)
	for {
		b.mu.Lock()
		for len(b.buf) == 0 && b.err == nil && !b.closing {
			b.mu.Unlock()
			<-b.kick
			b.mu.Lock()
		}
		out, stop := b.buf, b.err != nil || (b.closing && len(b.buf) == 0)
		b.buf = b.spare[:0]
		b.mu.Unlock()
		if stop {
			return
		}
		err := b.Conn.SetWriteDeadline(time.Now().Add(b.writeTimeout))
		if err == nil {
			_, err = b.Conn.Write(out)
		}
		b.mu.Lock()
		b.spare = out[:0]
		if err != nil && b.err == nil {
			b.err = fmt.Errorf("write to the broker: %w", err)
		}
		b.room.Broadcast()
		b.mu.Unlock()
		if err != nil {
			b.Conn.Close() // so that paho's reader sees the connection gone
			return
		}
	}
}

// Close writes out what is buffered (paho's DISCONNECT), waiting at most
// closeFlushWait, and closes the connection.
func (b *bufferedConn) Close() error {
	b.mu.Lock()
	b.closing = true
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
	t := time.NewTimer(closeFlushWait)
	defer t.Stop()
	select {
	case <-b.flushed:
	case <-t.C:
	}
	err := b.Conn.Close()
	b.mu.Lock()
	if b.err == nil {
		b.err = errConnClosed
	}
	b.room.Broadcast()
	b.mu.Unlock()
	<-b.flushed
	return err
}

// openBuffered opens the network connection paho would (tcp:// and mqtt://
// through a proxy from the environment, ssl://, tls:// and mqtts:// with TLS,
// the URL schemes Herald accepts) and buffers it.
func openBuffered(writeTimeout time.Duration) mqtt.OpenConnectionFunc {
	return func(uri *url.URL, opts mqtt.ClientOptions) (net.Conn, error) {
		dialer := opts.Dialer
		if dialer == nil {
			dialer = &net.Dialer{Timeout: opts.ConnectTimeout}
		}
		var conn net.Conn
		var err error
		switch uri.Scheme {
		case "tcp", "mqtt":
			conn, err = proxy.FromEnvironmentUsing(dialer).Dial("tcp", uri.Host)
		case "ssl", "tls", "mqtts":
			conn, err = dialTLS(dialer, uri.Host, opts.TLSConfig)
		default:
			return nil, fmt.Errorf("mqttout: unsupported broker URL scheme %q", uri.Scheme)
		}
		if err != nil {
			return nil, err
		}
		return newBufferedConn(conn, writeTimeout), nil
	}
}

// dialTLS connects with TLS, through the proxy all_proxy names if set, as paho
// does.
func dialTLS(dialer *net.Dialer, host string, cfg *tls.Config) (net.Conn, error) {
	if os.Getenv("all_proxy") == "" {
		return tls.DialWithDialer(dialer, "tcp", host, cfg)
	}
	conn, err := proxy.FromEnvironmentUsing(dialer).Dial("tcp", host)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(conn, cfg)
	if err := tc.Handshake(); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}
