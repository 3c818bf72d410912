//===----------------------------------------------------------------------===//
// meshsim — MeshModel
//===----------------------------------------------------------------------===//

import Balancers
import Breakers
import DequeModule
import Health
import Limiters
import Reports
import Retries
import SharedModel
import SimCore
import SimKernel
import SimRandom
import Spec

/// How an attempt ended, as seen by its caller.
enum AttemptStatus: UInt8 {
    case ok
    /// The service answered with an error (500).
    case error
    /// The replica crashed with the request on it.
    case reset
    /// The replica's queue was full (503).
    case overloaded
    /// The connection was refused (dead or removed endpoint) or no endpoint was known.
    case refused
    /// An authorization rule denied the request (403), before the service did any work.
    case forbidden

    var outcome: RequestOutcome {
        switch self {
        case .ok: return .ok
        case .error, .reset, .forbidden: return .failed
        case .overloaded, .refused: return .rejected
        }
    }
}

/// Where an attempt is in its life.
enum AttemptPhase: UInt8 {
    case free, travelling, queued, working, answering
    /// Lost in a partition on its way to the replica: only the caller's timeout ends it.
    case lost
    /// Waiting for a connection of the edge's Envoy breaker pool (`max_pending_requests`).
    case pending
}

/// One try of a call, served by one replica.
struct AttemptState {
    var generation: UInt32 = 0
    var phase: AttemptPhase = .free
    var status: AttemptStatus = .ok
    var failedChild = false
    var call: Int32 = -1
    var callGeneration: UInt32 = 0
    /// When the caller sent it (for the balancer's latency samples).
    var sentAt: Int64 = 0
    /// Whether the caller's balancer counts it as outstanding.
    var heldByBalancer = false
    /// The call edge it was sent on.
    var edge: Int32 = -1
    /// Whether it holds a permission of the edge's circuit breaker.
    var breakerHeld = false
    /// What it holds in the edge's Envoy connection pool.
    var pool = PoolState.none
    /// Whether it is a retry.
    var isRetry = false
    /// Whether it is a hedge (a further attempt sent while others are out).
    var isHedge = false
    /// Whether the caller is still waiting for it.
    var waitedOn = false
    /// Whether it went over a kept-alive mutual-TLS connection of its edge, to be returned to the edge's idle
    /// connections when the answer comes.
    var holdsConnection = false
    /// Whether an authorization rule denies it (its caller, service and path), so the replica answers 403.
    var denied = false
    /// Its replica's concurrency-limit permit, if the replica has a limiter.
    var permit: ConcurrencyPermit?
    var replica: Int32 = -1
    var replicaEpoch: UInt32 = 0
    var stage: Int32 = 0
    var pendingChildren: Int32 = 0
}

/// A call from a client or a replica to a service, with its retries.
struct CallState {
    var generation: UInt32 = 0
    var live = false
    var edge: Int32 = -1
    var parent: Int32 = -1
    var parentGeneration: UInt32 = 0
    var client: Int32 = -1
    var user: Int32 = -1
    var callerZone: Int32 = 0
    var attemptsMade: Int32 = 0
    var currentAttempt: Int32 = -1
    var start: Int64 = 0
    /// Whether the current attempt is a retry the edge's budget admitted (to release it when it ends).
    var retryHeld = false
    /// The call's own backoff state (decorrelated jitter remembers the previous wait).
    var backoff: Backoff?
    /// The request's path and host (indices into the simulation's tables), inherited down the call graph.
    var path: Int16 = 0
    var host: Int16 = 0
    /// The call's deadline (its own, or inherited from the call that caused it), if any.
    var deadline = Deadline.none
    /// Attempts the caller is still waiting for (more than one only with hedging).
    var outstanding: Int16 = 0
    /// The slots of the call's first eight attempts, by attempt number − 1.
    var slots = SIMD8<Int32>(repeating: -1)
}

/// A call site: how a client or a call step chooses the edge (target and policies) of each call.
struct CallSite {
    /// The edge of a direct site.
    var direct: Int32 = -1
    /// A split's sides, with cumulative weights (fractions of the total).
    var splitEdges: [Int32] = []
    var cumulative: [Double] = []
    /// Routes: the edge for each (path, host) pair, `pathIndex * hostCount + hostIndex`, or -1 (no route).
    var routeTable: [Int32] = []
    /// The stream for split draws.
    var rng: RandomStream?
}

/// A replica's runtime state: the shared replica state machine and where the replica sits in the model.
struct ReplicaState {
    var service: Int32
    var localIndex: Int32
    var zone: Int32
    /// The number of downstream steps of the service.
    var stageCount: Int32
    /// Workers, queue, draws, faults and concurrency limit (shared with `serve`).
    var machine: ReplicaStateMachine

    var isServing: Bool { machine.isServing }
    var active: Bool { machine.active }
    var workers: Int32 { machine.workers }
    var busy: Int32 { machine.busy }
    var epoch: UInt32 { machine.epoch }
    var errorRate: Double { machine.errorRate }
}

/// A client's runtime state.
struct ClientState {
    /// Open-loop arrival times (shared with `load`); `nil` for a closed-loop client.
    var generator: ArrivalGenerator?
    var think: RandomStream
    /// The client's zone.
    var zone: Int32
    /// Cumulative weights of its request paths (empty: one path), their global indices, and its host's index.
    var pathCumulative: [Double] = []
    var pathIndices: [Int16] = []
    var hostIndex: Int16 = 0
    var paths: RandomStream?
}

/// A one-way link's runtime state.
struct LinkState {
    var spec: LinkSpec
    var instant: Bool
    var extraDelay: Int64 = 0
    /// Messages are lost (a `drop` partition).
    var partitioned = false
    /// Messages sent before this instant (ns) are held and leave then (a `hold` partition); 0 when none is active,
    /// `Int64.max` for one that lasts to the run's end.
    var heldUntil: Int64 = 0
    var rng: RandomStream
}
