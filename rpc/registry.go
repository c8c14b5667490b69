package rpc

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// A Handler serves one method: it gets the call's context (cancelled when
// the caller goes away), the caller's session and the decoded params, and
// returns the result or an error. Errors are mapped by ErrorFrom.
type Handler[P, R any] func(ctx context.Context, s *Session, params P) (R, error)

// Method documents a method and says how it may be called. The registry
// fills in the param and result schemas from the handler's types.
type Method struct {
	Name        string
	Summary     string
	Description string
	// Errors lists the application error codes the method may answer
	// with, beyond the protocol codes every method shares.
	Errors []int
	// Examples pair params with results; the first is the one shown in
	// the README-style docs. Params and Result hold values of the
	// handler's param and result types.
	Examples []Example
	// NeedsSocket marks methods that only make sense on a WebSocket
	// connection, such as subscriptions; over HTTP they answer
	// CodeSocketRequired.
	NeedsSocket bool
	// Inline marks methods whose handler returns at once and never
	// blocks: no I/O, no waiting on locks held for long. They run on the
	// connection's read loop, which writes the reply itself, sparing the
	// hand-offs between goroutines that dominate the cost of a cheap
	// call. A handler that blocks stalls its connection's reading.
	Inline bool
	// Heavy marks methods whose replies may run to megabytes, such as
	// history pages: the server bounds how many run at once (see
	// Limits.MaxHeavyCalls), so that many of them cannot make it hold
	// more memory than it has.
	Heavy bool
	// Notifies marks methods whose handlers call AfterReply, to send
	// notifications that must follow the reply, such as a subscription's.
	Notifies bool
	// Ordered marks methods whose calls in one batch take effect in the
	// batch's order, such as publishes: each starts once the batch's
	// Ordered call before it has returned or called Placed, so that what
	// follows placing (waiting for a commit) overlaps. Once one fails
	// before it is placed, the batch's later Ordered calls are not run
	// and are answered CodeConflict. Calls sent on their own are not
	// ordered.
	Ordered bool
}

// Example is one documented pairing of params and result.
type Example struct {
	Name   string
	Params any
	Result any
}

// Validator is implemented by params that check their own rules after
// decoding. An error that is not an *Error becomes CodeInvalidParams.
type Validator interface {
	Validate() error
}

// Registry holds the methods a server serves and the notifications it
// sends. It is safe for concurrent use once registration is done;
// register everything before serving.
type Registry struct {
	methods       map[string]*method
	notifications map[string]*notification
}

type method struct {
	Method
	params *paramSpec
	result reflect.Type
	call   func(ctx context.Context, s *Session, raw json.RawMessage) (any, error)
}

type notification struct {
	name, summary, description string
	params                     *paramSpec
	examples                   []any
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{methods: map[string]*method{}, notifications: map[string]*notification{}}
}

// Register adds a method to r. P must be a struct type: its exported
// fields, in declaration order, are the params; a field is required unless
// its json tag says omitempty. Register panics on a programming error (a
// duplicate name or a P that is not a struct), as http.ServeMux does.
func Register[P, R any](r *Registry, m Method, h Handler[P, R]) {
	if _, dup := r.methods[m.Name]; dup {
		panic("rpc: method registered twice: " + m.Name)
	}
	if m.Inline && (m.Heavy || m.Ordered) {
		panic("rpc: a Heavy or Ordered method cannot run Inline, on the read loop: " + m.Name)
	}
	spec := newParamSpec(reflect.TypeFor[P]())
	r.methods[m.Name] = &method{
		Method: m,
		params: spec,
		result: reflect.TypeFor[R](),
		call: func(ctx context.Context, s *Session, raw json.RawMessage) (any, error) {
			var p P
			if err := spec.decode(raw, reflect.ValueOf(&p).Elem()); err != nil {
				return nil, err
			}
			if v, ok := any(&p).(Validator); ok {
				if err := v.Validate(); err != nil {
					return nil, asInvalidParams(err)
				}
			}
			return h(ctx, s, p)
		},
	}
}

// RegisterNotification documents a notification the server sends, with
// params of type P, so that it appears in openrpc.json.
func RegisterNotification[P any](r *Registry, name, summary, description string, examples ...P) {
	if _, dup := r.notifications[name]; dup {
		panic("rpc: notification registered twice: " + name)
	}
	n := &notification{name: name, summary: summary, description: description,
		params: newParamSpec(reflect.TypeFor[P]())}
	for _, e := range examples {
		n.examples = append(n.examples, e)
	}
	r.notifications[name] = n
}

func (r *Registry) lookup(name string) *method { return r.methods[name] }

// ordered reports whether req is a call of an Ordered method.
func (r *Registry) ordered(req *request) bool {
	m := r.methods[req.method]
	return m != nil && m.Ordered
}

// orderedNames lists the Ordered methods, for errors.
func (r *Registry) orderedNames() string {
	var names []string
	for _, m := range r.sortedMethods() {
		if m.Ordered {
			names = append(names, m.Name)
		}
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func (r *Registry) sortedMethods() []*method {
	ms := make([]*method, 0, len(r.methods))
	for _, m := range r.methods {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	return ms
}

func (r *Registry) sortedNotifications() []*notification {
	ns := make([]*notification, 0, len(r.notifications))
	for _, n := range r.notifications {
		ns = append(ns, n)
	}
	sort.Slice(ns, func(i, j int) bool { return ns[i].name < ns[j].name })
	return ns
}

// asInvalidParams keeps an *Error as it is and turns any other error from
// a Validator into CodeInvalidParams with the error's text.
func asInvalidParams(err error) error {
	if e, ok := err.(*Error); ok {
		return e
	}
	return &Error{Code: CodeInvalidParams, Message: fmt.Sprintf("Invalid params: %v", err)}
}
