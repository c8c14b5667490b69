package client_test

// These examples need a running Switchboard server ("switchboard serve"),
// so they have no Output comments: go test compiles them, and runs none.

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
)

func ExampleNew() {
	// "" would be client.DefaultURL; an http:// URL does as well as ws://.
	c, err := client.New("ws://127.0.0.1:8080/rpc", client.Options{Token: os.Getenv("SWITCHBOARD_TOKEN")})
	if err != nil {
		log.Fatal(err) // a malformed URL: New does not connect
	}
	defer c.Close()

	pos, err := c.Latest(context.Background(), "chat.lobby")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("chat.lobby is at offset", pos.Offset)
}

// A server whose certificate comes from a private CA, or is self-signed,
// is trusted by giving the CA's certificate, or the self-signed one.
func ExampleNew_privateCA() {
	pem, err := os.ReadFile("cert.pem")
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		log.Fatal("cert.pem holds no certificate")
	}
	c, err := client.New("wss://switchboard.example.com/rpc", client.Options{
		Token:   os.Getenv("SWITCHBOARD_TOKEN"),
		RootCAs: roots,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}

// Tokens that expire come from a TokenFunc: here, a file that another
// program (a login agent) keeps rewriting with a fresh token. The client
// reads it for each connection, and again before the connection's token
// expires, keeping the connection and its subscriptions.
func ExampleNew_tokenFunc() {
	c, err := client.New("ws://127.0.0.1:8080/rpc", client.Options{
		TokenFunc: func(context.Context) (string, error) {
			b, err := os.ReadFile("/run/switchboard/token")
			return strings.TrimSpace(string(b)), err
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}

// Call makes any of the server's calls; the result is decoded as
// encoding/json would.
func ExampleClient_Call() {
	c, err := client.New("", client.Options{Token: os.Getenv("SWITCHBOARD_TOKEN")})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var res struct {
		Channels []struct {
			Channel     string `json:"channel"`
			Offset      uint64 `json:"offset"`
			Subscribers int    `json:"subscribers"`
		} `json:"channels"`
	}
	err = c.Call(ctx, "channelList", map[string]string{"prefix": "chat."}, &res)
	var rpcErr *client.Error
	switch {
	case errors.As(err, &rpcErr):
		log.Fatalf("the server refused: %s (code %d)", rpcErr.Message, rpcErr.Code)
	case errors.Is(err, client.ErrUnauthorized):
		log.Fatal("the token will not do: ", err)
	case err != nil:
		log.Fatal(err) // a *client.ConnectionError, or ctx's error
	}
	for _, ch := range res.Channels {
		fmt.Println(ch.Channel, ch.Offset, ch.Subscribers)
	}
}

// An idempotency key makes retrying a publication safe: if the reply was
// lost after the server had the publication, the retry publishes nothing
// and says so.
func ExampleClient_Publish() {
	c, err := client.New("", client.Options{Token: os.Getenv("SWITCHBOARD_TOKEN")})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx := context.Background()
	data := json.RawMessage(`{"text":"hello"}`)
	for attempt := 1; ; attempt++ {
		res, err := c.Publish(ctx, "chat.lobby", data, "hello-from-alice-1")
		var connErr *client.ConnectionError
		if errors.As(err, &connErr) && !errors.Is(err, client.ErrUnauthorized) && attempt < 5 {
			time.Sleep(time.Second)
			continue
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("published at %d (a repeat: %v)\n", res.Offset, res.Duplicate)
		return
	}
}

// A Subscription yields every publication once, in offset order, across
// reconnections, or says which were lost. The package doc shows this
// loop.
func ExampleClient_Subscribe() {
	c, err := client.New("ws://127.0.0.1:8080/rpc", client.Options{Token: os.Getenv("SWITCHBOARD_TOKEN")})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx := context.Background()
	sub, err := c.Subscribe(ctx, "chat.lobby", nil)
	if err != nil {
		log.Fatal(err)
	}
	for {
		p, err := sub.Next(ctx)
		var lost *client.LostError
		switch {
		case errors.As(err, &lost):
			log.Print(lost) // and reload what the missing publications held
			continue
		case err != nil:
			log.Fatal(err)
		}
		fmt.Printf("%d: %s\n", p.Offset, p.Data)
	}
}

// A program that keeps its reader's position, and subscribes from it when
// it starts again, misses nothing while it was not running: what was
// published meanwhile comes first.
func ExampleClient_Subscribe_resume() {
	c, err := client.New("", client.Options{Token: os.Getenv("SWITCHBOARD_TOKEN")})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	const saved = "orders.position.json"
	var since *client.Position // nil: from now on
	if b, err := os.ReadFile(saved); err == nil {
		since = new(client.Position)
		if err := json.Unmarshal(b, since); err != nil {
			log.Fatal(err)
		}
	}
	ctx := context.Background()
	sub, err := c.Subscribe(ctx, "orders", since)
	if err != nil {
		log.Fatal(err)
	}
	for {
		p, err := sub.Next(ctx)
		var lost *client.LostError
		switch {
		case errors.As(err, &lost):
			log.Print(lost)
		case err != nil:
			log.Fatal(err)
		default:
			fmt.Printf("order %s\n", p.Data)
		}
		b, err := json.Marshal(sub.Position())
		if err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(saved, b, 0o600); err != nil {
			log.Fatal(err)
		}
	}
}

// After a loss, a view of a channel's latest publications can be redrawn
// from what its history still holds up to where the subscription goes
// on; Next yields the ones after that.
func ExampleLostError() {
	c, err := client.New("", client.Options{Token: os.Getenv("SWITCHBOARD_TOKEN")})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx := context.Background()
	sub, err := c.Subscribe(ctx, "chat.lobby", nil)
	if err != nil {
		log.Fatal(err)
	}
	var view []client.Publication // the latest 50, oldest first
	for {
		p, err := sub.Next(ctx)
		var lost *client.LostError
		switch {
		case errors.As(err, &lost):
			log.Print(lost)
			h, err := c.History(ctx, lost.Channel, client.HistoryQuery{
				// Before Resumed.Offset+1: up to Resumed, newest first.
				Since:       &client.Position{Offset: lost.Resumed.Offset + 1, Epoch: lost.Resumed.Epoch},
				Limit:       50,
				NewestFirst: true,
			})
			if err != nil {
				log.Fatal(err)
			}
			view = view[:0]
			for i := len(h.Publications) - 1; i >= 0; i-- {
				view = append(view, h.Publications[i])
			}
		case err != nil:
			log.Fatal(err)
		default:
			view = append(view, p)
			if len(view) > 50 {
				view = view[1:]
			}
		}
		fmt.Println(len(view), "publications in view")
	}
}

// Next returns the error of its context without ending the subscription;
// any other error but a *LostError ends it.
func ExampleSubscription_Next() {
	c, err := client.New("", client.Options{Token: os.Getenv("SWITCHBOARD_TOKEN")})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx := context.Background()
	sub, err := c.Subscribe(ctx, "chat.lobby", nil)
	if err != nil {
		log.Fatal(err)
	}
	for {
		quiet, cancel := context.WithTimeout(ctx, time.Minute)
		p, err := sub.Next(quiet)
		cancel()
		var lost *client.LostError
		var rpcErr *client.Error
		switch {
		case err == nil:
			fmt.Printf("%d: %s\n", p.Offset, p.Data)
		case errors.Is(err, context.DeadlineExceeded):
			log.Print("nothing for a minute") // the subscription goes on
		case errors.As(err, &lost):
			log.Print(lost)
		case errors.Is(err, client.ErrDisconnected):
			log.Fatal("an admin cut this user off: ", err) // the error has their reason
		case errors.Is(err, client.ErrUnauthorized):
			log.Fatal("the token was refused, or expired without a TokenFunc to replace it: ", err)
		case errors.As(err, &rpcErr):
			log.Fatal("the server would not subscribe again: ", rpcErr)
		default:
			log.Fatal(err) // client.ErrClosed, after Close
		}
	}
}

// TestPackageDocIsExampleClientSubscribe keeps the package doc's code,
// which go vet does not compile, the same as the example's, which it does.
func TestPackageDocIsExampleClientSubscribe(t *testing.T) {
	fset := token.NewFileSet()
	doc, err := parser.ParseFile(fset, "doc.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	var code []string
	for _, line := range strings.Split(doc.Doc.Text(), "\n") {
		if strings.HasPrefix(line, "\t") || line == "" && code != nil {
			code = append(code, strings.TrimPrefix(line, "\t"))
		} else if code != nil {
			break
		}
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(fset, "example_test.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var body string
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Name.Name == "ExampleClient_Subscribe" {
			b := src[fset.Position(fn.Body.Lbrace).Offset+1 : fset.Position(fn.Body.Rbrace).Offset]
			body = strings.Trim(string(b), "\n")
		}
	}
	var want []string
	for _, line := range strings.Split(body, "\n") {
		want = append(want, strings.TrimPrefix(line, "\t"))
	}
	got := strings.TrimRight(strings.Join(code, "\n"), "\n")
	if body == "" || got != strings.Join(want, "\n") {
		t.Errorf("the package doc's code is not ExampleClient_Subscribe's body:\n%s\n\nthe example's:\n%s", got, strings.Join(want, "\n"))
	}
}
