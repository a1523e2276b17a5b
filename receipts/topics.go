package receipts

// Subscription is the MQTT filter Herald consumes receipts with: a shared
// subscription, so that the broker hands each receipt to one replica.
func Subscription(prefix string) string {
	return "$share/herald/" + prefix + "/+/receipts/+"
}

// Fence is the topic prefix under which each replica's receipts connection
// finds its own fence topic ({prefix}/$herald/fence/{client id}): on stopping,
// it publishes a marker there and waits for it, to know that the broker has
// handed over every receipt it had routed to the replica. No game id can start
// with $, and the README's broker ACL lets Herald read and write there.
func Fence(prefix string) string {
	return prefix + "/$herald/fence"
}
