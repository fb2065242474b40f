// Package algo is the asynchronous mini-batch algorithm as pure state
// machines: the master (Master: modes, the lazy and the eager update,
// svrg's master side, workers leaving and joining, its checkpoint), the
// worker's copy of x (Replica), its mini-batch sampler (Sampler) and the
// messages between them (Grad, Reply, Ready). It opens no socket or file,
// starts no goroutine and reads no clock: versions and delays are counted
// in updates, and the drivers (package ranks over comm, package sim in
// simulated time) feed it its inputs and carry out its outputs.
package algo
