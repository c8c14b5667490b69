package service

import "context"

// WhenPlaced returns ctx carrying place, which the engine calls, through
// Placed, once the publication or removal made with ctx has its place in
// its channel's order (its offset, say) and before it waits for that to
// be durable. A caller that makes several in a row, in order, may start
// the next one then rather than once the first returns, and so share a
// commit.
func WhenPlaced(ctx context.Context, place func()) context.Context {
	return context.WithValue(ctx, placedKey{}, place)
}

// Placed calls the function WhenPlaced gave ctx, if any. Engines call it
// from Publish and Remove; one that does not lets its callers' calls
// follow each other one at a time.
func Placed(ctx context.Context) {
	if place, _ := ctx.Value(placedKey{}).(func()); place != nil {
		place()
	}
}

type placedKey struct{}
