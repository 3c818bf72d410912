//===----------------------------------------------------------------------===//
// meshsim — SharedModel
//===----------------------------------------------------------------------===//

import SimCore
public import SimRandom
public import Spec

/// What the active faults do to one replica's service: the one reading of ``Spec/FaultKind`` for both halves.
///
/// Start from the identity and ``apply(_:)`` every active fault that selects the replica, in the order of the
/// scenario's fault list; the result is the same whichever half computes it.
public struct ReplicaModifiers: Sendable, Equatable {
    /// The product of the active slowdown factors.
    public var slowdown: Double = 1
    /// The highest error probability among active `errors` faults, if any (the service's own rate still counts
    /// when higher).
    public var errorRate: Double?
    /// The distribution of the last active `service_time` fault, if any.
    public var serviceTime: Distribution?
    /// The last active `pause` fault's schedule, if any.
    public var pause: PauseSchedule?

    /// No fault: the replica behaves as its spec says.
    public init() {}

    /// Adds the effect of `fault` (which must select this replica) to the modifiers. Faults that do not change how a
    /// replica serves (crashes, network, load, scaling) change nothing here.
    public mutating func apply(_ fault: FaultSpec) {
        switch fault.kind {
        case .slowdown(_, let factor):
            slowdown *= factor
        case .serviceTime(_, let distribution):
            serviceTime = distribution
        case .errors(_, let rate):
            errorRate = max(errorRate ?? 0, rate)
        case .pause(_, let every, let length):
            let origin = fault.at.nanoseconds
            pause = PauseSchedule(
                origin: origin,
                every: every.nanoseconds,
                length: length.nanoseconds,
                until: fault.duration.map { origin + $0.nanoseconds } ?? .max
            )
        case .crash, .zoneOutage, .scale, .loadSpike, .latency, .partition:
            break
        }
    }
}

/// Where a replica sits in the spec: what a fault's selection is matched against.
public struct ReplicaAddress: Sendable, Equatable, Hashable {
    /// The service's index in ``Spec/MeshSpec/services``.
    public var service: Int
    /// The replica's index within its service.
    public var replica: Int
    /// The replica's zone index.
    public var zone: Int

    /// The address of replica `replica` of service `service`, in `zone`.
    public init(service: Int, replica: Int, zone: Int) {
        self.service = service
        self.replica = replica
        self.zone = zone
    }
}

/// What part of the mesh a fault acts on.
public enum FaultScope: Sendable, Equatable {
    /// Replicas: they crash, slow down, fail, pause or take another service time.
    case replicas
    /// The network between two zones.
    case network
    /// A client's offered load.
    case load(client: Int)
    /// A service's number of running replicas.
    case scale
}

extension FaultKind {
    /// The fault's name as a scenario writes it (`kind:`).
    public var name: String {
        switch self {
        case .crash: return "crash"
        case .slowdown: return "slowdown"
        case .serviceTime: return "service_time"
        case .errors: return "errors"
        case .latency: return "latency"
        case .partition: return "partition"
        case .zoneOutage: return "zone_outage"
        case .pause: return "pause"
        case .loadSpike: return "load_spike"
        case .scale: return "scale"
        }
    }

    /// What part of the mesh the fault acts on.
    public var scope: FaultScope {
        switch self {
        case .crash, .slowdown, .serviceTime, .errors, .pause, .zoneOutage: return .replicas
        case .latency, .partition: return .network
        case .loadSpike(let client, _): return .load(client: client)
        case .scale: return .scale
        }
    }

    /// Whether the fault stops the replicas it selects (a crash or a zone outage).
    public var crashes: Bool {
        switch self {
        case .crash, .zoneOutage: return true
        default: return false
        }
    }

    /// Whether the fault acts on the replica at `address`.
    public func selects(_ address: ReplicaAddress) -> Bool {
        switch self {
        case .crash(let s), .slowdown(let s, _), .serviceTime(let s, _), .errors(let s, _), .pause(let s, _, _):
            return s.service == address.service && (s.replicas.isEmpty || s.replicas.contains(address.replica))
        case .zoneOutage(let zone):
            return zone == address.zone
        case .latency, .partition, .loadSpike, .scale:
            return false
        }
    }
}

extension FaultSpec {
    /// The end of the fault on the model's timeline (ns), or `nil` when it lasts to the end of the run.
    public var end: Int64? { duration.map { at.nanoseconds + $0.nanoseconds } }
}
