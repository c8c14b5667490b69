package client

import (
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// allStates is every subState, in order.
func allStates() []subState {
	states := make([]subState, len(subStateNames))
	for i := range states {
		states[i] = subState(i)
	}
	return states
}

// moveTo makes the move from → next on a Subscription of its own and
// reports whether to panicked, and the state it was left in.
func moveTo(from, next subState) (panicked bool, left subState) {
	s := &Subscription{channel: "c", state: from}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() {
		panicked = recover() != nil
		left = s.state
	}()
	s.to(next)
	return
}

// Every pair of states is tried: the listed moves are made, every other
// one panics and leaves the state alone. Ended is for good: no move out
// of it is listed, so every one panics.
func TestSubscriptionMovesOnlyAsListed(t *testing.T) {
	if len(subMoves) != len(subStateNames) {
		t.Fatalf("subMoves lists %d states, there are %d", len(subMoves), len(subStateNames))
	}
	if moves := subMoves[stateEnded]; len(moves) != 0 {
		t.Errorf("subMoves lists moves out of ended: %v", moves)
	}
	for _, from := range allStates() {
		for _, next := range allStates() {
			listed := slices.Contains(subMoves[from], next)
			panicked, left := moveTo(from, next)
			switch {
			case listed && (panicked || left != next):
				t.Errorf("%v → %v is listed: to panicked %v and left the state at %v, want no panic and %[2]v", from, next, panicked, left)
			case !listed && (!panicked || left != from):
				t.Errorf("%v → %v is not listed: to panicked %v and left the state at %v, want a panic and %[1]v", from, next, panicked, left)
			}
		}
	}
}

// The table says what the doc comment of subState does: each "a, b → c"
// there is a move, and "any but ended → ended" is one from every other
// state.
func TestSubscriptionMovesAreTheDocumentedOnes(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "substate.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var doc string
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.TYPE && g.Specs[0].(*ast.TypeSpec).Name.Name == "subState" {
			doc = g.Doc.Text()
		}
	}
	byName := map[string]subState{}
	for _, st := range allStates() {
		byName[st.String()] = st
	}
	documented := map[[2]subState]bool{}
	for _, m := range regexp.MustCompile(`(any but \w+|\w+(?:, \w+)*) → (\w+)`).FindAllStringSubmatch(doc, -1) {
		next, ok := byName[m[2]]
		if !ok {
			t.Fatalf("%q in the doc comment: %q is no state", m[0], m[2])
		}
		var froms []subState
		if but, ok := strings.CutPrefix(m[1], "any but "); ok {
			for _, st := range allStates() {
				if st.String() != but {
					froms = append(froms, st)
				}
			}
		} else {
			for name := range strings.SplitSeq(m[1], ", ") {
				from, ok := byName[name]
				if !ok {
					t.Fatalf("%q in the doc comment: %q is no state", m[0], name)
				}
				froms = append(froms, from)
			}
		}
		for _, from := range froms {
			documented[[2]subState{from, next}] = true
		}
	}
	if len(documented) == 0 {
		t.Fatal("found no move in the doc comment of subState")
	}
	for _, from := range allStates() {
		for _, next := range allStates() {
			listed, inDoc := slices.Contains(subMoves[from], next), documented[[2]subState{from, next}]
			if listed != inDoc {
				t.Errorf("%v → %v: in subMoves %v, in the doc comment %v", from, next, listed, inDoc)
			}
		}
	}
}
