//===----------------------------------------------------------------------===//
// meshsim — MeshModel
//===----------------------------------------------------------------------===//

import Balancers
import DequeModule
import Reports
import SimCore
import SimKernel
import SimRandom

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

    var outcome: RequestOutcome {
        switch self {
        case .ok: return .ok
        case .error, .reset: return .failed
        case .overloaded, .refused: return .rejected
        }
    }
}

/// Where an attempt is in its life.
enum AttemptPhase: UInt8 {
    case free, travelling, queued, working, answering
}

/// One try of a call, served by one replica.
struct AttemptState {
    var generation: UInt32 = 0
    var phase: AttemptPhase = .free
    var status: AttemptStatus = .ok
    var failedChild = false
    var call: Int32 = -1
    var callGeneration: UInt32 = 0
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
}

/// The balancer of one call edge, without existentials (a switch, not dynamic dispatch).
enum BalancerBox {
    case roundRobin(RoundRobinBalancer)
    case random(RandomBalancer)

    init(_ kind: BalancerKind) {
        switch kind {
        case .roundRobin: self = .roundRobin(RoundRobinBalancer())
        case .random: self = .random(RandomBalancer())
        }
    }

    mutating func pick(
        from endpoints: UnsafeBufferPointer<EndpointState>,
        at now: SimInstant,
        using rng: inout RandomStream
    ) -> Int? {
        switch self {
        case .roundRobin(var balancer):
            let choice = balancer.pick(from: endpoints, at: now, using: &rng)
            self = .roundRobin(balancer)
            return choice
        case .random(var balancer):
            return balancer.pick(from: endpoints, at: now, using: &rng)
        }
    }
}

/// A call edge: who calls which service, with which policy.
struct EdgeState {
    var target: Int32
    var policy: CallPolicy
    var timeoutNs: Int64
    var balancer: BalancerBox
    var rng: RandomStream

    /// Picks an endpoint with the edge's balancer and stream.
    @inline(__always)
    mutating func pick(from endpoints: UnsafeBufferPointer<EndpointState>, at now: SimInstant) -> Int? {
        balancer.pick(from: endpoints, at: now, using: &rng)
    }
}

/// A replica's runtime state.
struct ReplicaState {
    var service: Int32
    var localIndex: Int32
    var zone: Int32
    var speed: Double
    var workers: Int32
    var queueCapacity: Int32
    var baseErrorRate: Double
    /// The service's local work per request.
    var serviceTime: Distribution
    /// The number of downstream steps of the service.
    var stageCount: Int32
    var busy: Int32 = 0
    var waiting: Deque<Int32> = []
    var active: Bool
    var crashes: Int32 = 0
    var epoch: UInt32 = 0
    var slowdown: Double = 1
    var errorRate: Double
    var pauseEvery: Int64 = 0
    var pauseLength: Int64 = 0
    var pauseOrigin: Int64 = 0
    var pauseUntil: Int64 = 0
    var serviceStream: RandomStream
    var errorStream: RandomStream

    var isServing: Bool { active && crashes == 0 }

    /// Draws the local work of one request, before slowdowns and speed.
    @inline(__always)
    mutating func drawWork() -> Int64 { serviceTime.sample(using: serviceStream) }
}

/// A client's runtime state.
struct ClientState {
    var arrivals: RandomStream
    var thinning: RandomStream
    var think: RandomStream
    /// The client's zone.
    var zone: Int32
    /// Poisson at one rate from the start with no spikes: arrivals need no thinning.
    var steadyPoisson = false
    /// The highest rate the client reaches (schedule × load spikes), for thinning.
    var peakRate: Double = 0
}

/// A one-way link's runtime state.
struct LinkState {
    var spec: LinkSpec
    var instant: Bool
    var extraDelay: Int64 = 0
    var partitioned = false
    var rng: RandomStream
}
