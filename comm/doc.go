// Package comm is asyncmb's communicator: a small MPI/gloo for Go on raw
// TCP. It has three parts kept apart, as gloo keeps them:
//
//   - transport: framed, checksummed, optionally compressed links between
//     two ranks (wire.go, codec.go, msg.go), authenticated by an
//     HMAC-SHA256 challenge-response when they open (handshake.go), watched
//     by heartbeats (link.go);
//   - rendezvous: a Store (memory, file, TCP) through which rank 0
//     publishes its address, and the star of links every rank opens to
//     rank 0 to learn the table of all ranks (rendezvous.go); other links
//     open lazily on first use;
//   - algorithms: point-to-point Send/Recv/RecvAny and the collectives
//     Barrier, Bcast, Gather, Reduce and Allreduce (collectives.go), written
//     only against Send and Recv.
//
// The wire format is documented byte by byte in README.md beside this file.
//
// comm imports only the standard library, github.com/klauspost/compress and
// golang.org/x/sys: nothing else of asyncmb.
package comm
