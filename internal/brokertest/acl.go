package brokertest

import _ "embed" // HeraldACL

// HeraldACL is the Mosquitto ACL file the README's "Broker security" section
// shows, for the default topic prefix "herald". Tests run brokers with this very
// text, and check that the README still quotes it.
//
//go:embed testdata/herald.acl
var HeraldACL string
