package brokertest

import mqtt "github.com/eclipse/paho.mqtt.golang"

// BarePublish is the baseline benchmarks measure Herald against: a plain paho
// client publishing n QoS 1 messages to topic(i) as fast as it can with up to
// window tokens outstanding, a second goroutine waiting on them in order. It
// returns the first publish error.
func BarePublish(client mqtt.Client, topic func(i int) string, payload []byte, n, window int, retain bool) error {
	toks := make(chan mqtt.Token, window)
	errc := make(chan error, 1)
	go func() {
		var first error
		for tok := range toks {
			tok.Wait()
			if err := tok.Error(); err != nil && first == nil {
				first = err
			}
		}
		errc <- first
	}()
	for i := range n {
		toks <- client.Publish(topic(i), 1, retain, payload)
	}
	close(toks)
	return <-errc
}
