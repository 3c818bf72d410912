//===----------------------------------------------------------------------===//
// meshsim — MeshModel
//===----------------------------------------------------------------------===//

import Reports
import SimCore
import SimRandom
import Spec

// The mesh's own security in virtual time: what mutual TLS costs, and authorization.
//
// Each call edge keeps kept-alive connections per replica of its target, as a sidecar's upstream pool does: an
// attempt takes an idle one, or opens a new one and pays a TLS handshake; every attempt pays the per-request
// crypto cost. Both costs are added to the attempt's trip to the replica. A connection goes back to the edge's
// idle ones when its answer comes; one whose attempt was abandoned (timeout, a lost hedge) is closed, and every
// connection to a replica is lost when the replica crashes. A connection refused by a replica that is not serving
// costs no handshake. Authorization is decided per edge and path when the model is built (its caller, service and
// path do not change); a denied attempt is answered 403 by the replica's side before any work.

/// Mutual TLS's state in the simulator: the costs, their stream, and the idle connections of each edge.
struct SecurityState {
    /// The time a new connection's handshake takes.
    let handshake: Distribution
    /// The time each request's crypto takes.
    let request: Distribution
    /// The stream the costs are drawn from (`security/tls`).
    let rng: RandomStream
    /// Idle connections per edge and replica (its index in its service).
    var idle: [[Int32]]
    /// The replica incarnation (epoch) the idle connections of each edge and replica belong to.
    var idleEpoch: [[UInt32]]

    init(spec: SecuritySpec, stream: RandomStream, replicasPerEdge: [Int]) {
        handshake = spec.handshakeCost
        request = spec.requestCost
        rng = stream
        idle = replicasPerEdge.map { Array(repeating: 0, count: $0) }
        idleEpoch = replicasPerEdge.map { Array(repeating: 0, count: $0) }
    }
}

extension Simulation {
    /// What mutual TLS adds to attempt `a`'s trip on `edge` to `replica`: the request's crypto cost, and a
    /// handshake when no idle connection to the replica is left.
    ///
    /// - Complexity: O(1).
    mutating func tlsCost(attempt a: Int, edge e: Int, replica r: Int) -> Int64 {
        guard replicas[r].isServing else { return 0 }  // refused before any handshake
        let local = Int(replicas[r].localIndex)
        let epoch = replicas[r].epoch
        if security!.idleEpoch[e][local] != epoch {
            // The replica crashed since: its connections are gone.
            security!.idleEpoch[e][local] = epoch
            security!.idle[e][local] = 0
        }
        var cost = security!.request.sample(using: security!.rng)
        if security!.idle[e][local] > 0 {
            security!.idle[e][local] -= 1
        } else {
            cost += security!.handshake.sample(using: security!.rng)
            recorder.count(.tlsHandshakes, at: now)
        }
        attempts[a].holdsConnection = true
        return cost
    }

    /// Attempt `a`'s answer came back to a caller still waiting for it: its connection becomes idle again, unless
    /// the replica crashed since or the connection failed.
    mutating func returnConnection(_ a: Int) {
        let r = Int(attempts[a].replica)
        guard r >= 0, attempts[a].status != .refused, attempts[a].status != .reset else { return }
        let e = Int(attempts[a].edge)
        let local = Int(replicas[r].localIndex)
        guard security!.idleEpoch[e][local] == replicas[r].epoch else { return }
        security!.idle[e][local] += 1
    }
}
