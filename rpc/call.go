package rpc

// call is a parsed request on its way through jsonrpc2 to conn.Handle,
// which runs it.
type call struct {
	req   request
	batch *batch // nil for a call sent on its own
	slot  int    // the call's place in its batch
	turn  *turn  // its place in the batch's order, for an Ordered call of a batch; else nil
}

// complete files reply with the call's batch, if it has one, and returns
// what is to be sent: the reply itself for a call sent on its own, the
// batch's reply once its last call is done, or nil. It also returns what
// is to run once that reply is queued: after for a call on its own, every
// batched call's after once the batch is done.
func (cl call) complete(reply []byte, after func()) ([]byte, func()) {
	if cl.batch == nil {
		return reply, after
	}
	return cl.batch.finish(cl.slot, reply, after)
}
