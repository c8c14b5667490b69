// Package client is a Go client for a Switchboard server.
//
// A Client makes one-shot calls over HTTP POST (or, for the methods that
// need one, over a WebSocket of their own), and from its first Subscribe
// until Close keeps one WebSocket for its subscriptions. Subscriptions
// survive dropped connections and server restarts: the client reconnects
// with backoff and recovers what was published meanwhile from the
// channel's history, so that a Subscription yields every publication
// once, in offset order, or says which ones were lost. This is
// ExampleClient_Subscribe:
//
//	c, err := client.New("ws://127.0.0.1:8080/rpc", client.Options{Token: os.Getenv("SWITCHBOARD_TOKEN")})
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer c.Close()
//
//	ctx := context.Background()
//	sub, err := c.Subscribe(ctx, "chat.lobby", nil)
//	if err != nil {
//		log.Fatal(err)
//	}
//	for {
//		p, err := sub.Next(ctx)
//		var lost *client.LostError
//		switch {
//		case errors.As(err, &lost):
//			log.Print(lost) // and reload what the missing publications held
//			continue
//		case err != nil:
//			log.Fatal(err)
//		}
//		fmt.Printf("%d: %s\n", p.Offset, p.Data)
//	}
//
// Tokens that expire are given by Options.TokenFunc: the client asks it
// for a token for each connection, and, when the server says the
// connection's token is about to expire, hands the server a new one
// without dropping the connection or its subscriptions. Should that fail,
// the connection closes at the expiry, and the client reconnects with a
// new token and recovers what it missed. Without TokenFunc, an expired
// token ends the subscriptions. When an admin cuts the user off (close
// code 4003), the subscriptions end with ErrDisconnected, and the client
// does not reconnect.
//
// The other examples show calls, publishing safely retried, resuming from
// a kept Position, reloading after a loss, and why a subscription ends.
package client
