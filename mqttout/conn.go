// Package mqttout owns how a message reaches the MQTT broker: Herald's one
// long-lived connection, its reconnects, and (with campaigns) QoS 1 publishing.
// It knows topics and payloads, never campaigns or segments.
package mqttout

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Config says where the broker is and who Herald is to it.
type Config struct {
	URL      string // tcp://host:1883, ssl://host:8883 or mqtts://host:8883
	Username string
	Password string
	// ClientID defaults to herald-{hostname}-{random}: unique per replica, since a
	// broker disconnects the older of two clients with the same id.
	ClientID string
	Log      *slog.Logger
}

// Conn is Herald's connection to the broker. It connects in the background and
// reconnects on its own, so Herald starts and serves while the broker is down.
type Conn struct {
	client mqtt.Client
	log    *slog.Logger
}

// Dial starts connecting to the broker and returns at once; Connected tells when
// the connection is up.
func Dial(cfg Config) (*Conn, error) {
	if cfg.ClientID == "" {
		id, err := defaultClientID()
		if err != nil {
			return nil, err
		}
		cfg.ClientID = id
	}
	c := &Conn{log: cfg.Log}
	opts := mqtt.NewClientOptions().
		AddBroker(cfg.URL).
		SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetCleanSession(true). // DESIGN 2: nothing is queued for Herald across sessions
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(10 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetOrderMatters(false).
		SetOnConnectHandler(func(mqtt.Client) {
			c.log.Info("broker connected", "url", cfg.URL, "client_id", cfg.ClientID)
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			c.log.Warn("broker connection lost", "url", cfg.URL, "err", err)
		}).
		SetReconnectingHandler(func(mqtt.Client, *mqtt.ClientOptions) {
			c.log.Info("broker reconnecting", "url", cfg.URL)
		})
	c.client = mqtt.NewClient(opts)
	// With ConnectRetry the token completes only once connected (or on Disconnect),
	// so it is not waited for here.
	c.client.Connect()
	return c, nil
}

// Connected reports whether the connection to the broker is up.
func (c *Conn) Connected() bool {
	return c.client.IsConnectionOpen()
}

// Close disconnects, giving in-flight work up to a second to finish.
func (c *Conn) Close() {
	c.client.Disconnect(1000)
}

func defaultClientID() (string, error) {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random client id: %w", err)
	}
	return "herald-" + host + "-" + hex.EncodeToString(b[:]), nil
}
