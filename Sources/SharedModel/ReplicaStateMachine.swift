//===----------------------------------------------------------------------===//
// meshsim — SharedModel
//===----------------------------------------------------------------------===//

public import DequeModule
public import Limiters
import SimCore
public import SimRandom
public import Spec

/// One replica of a service, free of any clock: worker slots, a bounded FIFO queue (503 on overflow), a service
/// time drawn from its distribution and divided by its speed, an error draw after the work, the fault modifiers
/// (slowdown, service time, errors, stop-the-world pauses), crash and restart, and an optional adaptive
/// concurrency limit.
///
/// Methods take `now` (nanoseconds on the model's timeline) and return what to do; the driver does it. The
/// simulator drives it in virtual nanoseconds (`MeshModel`), `serve` with its event loop's clock (`Live`). Given the
/// same seed, the same requests at the same times get the same decisions in both, since the streams, the draws and
/// their order are the same. Requests are `Int32` tokens the driver chooses (an attempt slot, a connection slot).
///
/// The order of events follows a server process (in the style of NIO's `…StateMachine` types):
/// ``arrive(_:now:)`` admits a request to a worker or the queue; when the work ends the driver checks ``epoch``
/// (work from before a crash is void), does any downstream calls, then asks ``drawError()`` and
/// ``releaseWorker(now:)``, which hands the worker to the next queued request.
public struct ReplicaStateMachine {
    /// What became of an arriving request.
    public enum Admission: Equatable {
        /// The replica is down (crashed or stopped): the connection is refused.
        case refused
        /// The concurrency limit is reached: answered 503 at once.
        case limited
        /// The queue is full: answered 503 at once; the permit (if a limit is set) goes back with that answer.
        case rejected(permit: ConcurrencyPermit?)
        /// It waits for a worker; the permit (if any) goes back with its answer.
        case queued(permit: ConcurrencyPermit?)
        /// A worker took it; its work ends at `finish`.
        case started(finish: Int64, permit: ConcurrencyPermit?)
    }

    /// Requests served at once.
    public let workers: Int32
    /// Requests that may wait for a worker.
    public let queueCapacity: Int32
    /// The replica's speed factor: service times are divided by it.
    public let speed: Double
    /// The service's own error probability.
    public let baseErrorRate: Double
    /// The service's own service-time distribution.
    public let baseServiceTime: Distribution
    /// The stream of service-time draws.
    public let serviceStream: RandomStream
    /// The stream of error draws (and of the concurrency limit's randomness).
    public let errorStream: RandomStream

    /// Workers busy now.
    public private(set) var busy: Int32 = 0
    /// Requests waiting for a worker, oldest first.
    public private(set) var waiting = Deque<Int32>()
    /// Whether the replica is running (spares are not, until scaled in).
    public private(set) var active: Bool
    /// Crash faults holding it down now.
    public private(set) var crashes: Int32 = 0
    /// Bumped at every crash: work started before it is void.
    public private(set) var epoch: UInt32 = 0
    /// The faults' effect now.
    public private(set) var modifiers = ReplicaModifiers()
    /// The error probability now.
    public private(set) var errorRate: Double
    /// The service-time distribution now.
    public private(set) var serviceTime: Distribution
    /// The adaptive concurrency limit, if the service has one.
    public private(set) var limiter: ConcurrencyLimiterBox?

    /// A replica built from its spec, with its streams.
    public init(
        service: ServiceSpec,
        replica: ReplicaSpec,
        serviceStream: RandomStream,
        errorStream: RandomStream
    ) {
        workers = Int32(clamping: service.workers)
        queueCapacity = Int32(clamping: service.queueCapacity)
        speed = replica.speed
        baseErrorRate = service.errorRate
        baseServiceTime = service.serviceTime
        self.serviceStream = serviceStream
        self.errorStream = errorStream
        active = replica.initiallyActive
        errorRate = service.errorRate
        serviceTime = service.serviceTime
        limiter = ConcurrencyLimiterBox(service.concurrencyLimit)
    }

    /// The stream keys of replica `index` of `service`: the same in both halves, so both draw the same numbers.
    public static func streamKeys(service: String, index: Int) -> (serviceTime: String, errors: String) {
        let key = "service/\(service)/replica/\(index)"
        return (key + "/service_time", key + "/errors")
    }

    /// Whether the replica accepts connections.
    public var isServing: Bool { active && crashes == 0 }

    /// The current concurrency limit (0 without a limiter).
    public var concurrencyLimit: Int { limiter?.limit ?? 0 }

    /// A request arrives: it is refused, limited, rejected, queued or started.
    ///
    /// - Complexity: O(1) amortised (one service-time draw when it starts).
    public mutating func arrive(_ request: Int32, now: Int64) -> Admission {
        guard isServing else { return .refused }
        var permit: ConcurrencyPermit?
        if limiter != nil {
            guard let acquired = limiter!.acquire(at: SimInstant(nanoseconds: now)) else { return .limited }
            permit = acquired
        }
        if busy < workers {
            busy += 1
            return .started(finish: startWork(now: now), permit: permit)
        }
        if waiting.count < Int(queueCapacity) {
            waiting.append(request)
            return .queued(permit: permit)
        }
        return .rejected(permit: permit)
    }

    /// Draws the work of a request that takes a worker now and returns when it ends, given the slowdown, the
    /// speed and any pauses.
    ///
    /// - Complexity: O(1).
    @inline(__always)
    mutating func startWork(now: Int64) -> Int64 {
        var work = serviceTime.sample(using: serviceStream)
        let factor = modifiers.slowdown / speed
        if factor != 1 { work = clampToNanoseconds(Double(work) * factor) }
        guard let pause = modifiers.pause else { return now + work }
        return pause.finishTime(start: now, work: work)
    }

    /// How long something arriving at `time` waits for the current stop-the-world pause to end (0 outside pauses):
    /// a health check answered by the replica's process.
    public func pauseWait(at time: Int64) -> Int64 {
        guard let pause = modifiers.pause else { return 0 }
        return pause.finishTime(start: time, work: 0) - time
    }

    /// Whether a request whose work just ended fails (a 500): one draw from the error stream when the error
    /// probability is above zero, none otherwise.
    public mutating func drawError() -> Bool {
        errorRate > 0 && errorStream.bernoulli(errorRate)
    }

    /// A worker is done: it takes the next queued request (returned with the end of its work), or becomes free.
    ///
    /// - Complexity: O(1).
    public mutating func releaseWorker(now: Int64) -> (request: Int32, finish: Int64)? {
        if let next = waiting.popFirst() {
            return (next, startWork(now: now))
        }
        busy -= 1
        return nil
    }

    /// Returns a concurrency permit with the answer's status; the limit learns from it.
    public mutating func releasePermit(_ permit: ConcurrencyPermit, outcome: ConcurrencyOutcome, now: Int64) {
        var rng = errorStream
        limiter?.release(permit, at: SimInstant(nanoseconds: now), outcome: outcome, using: &rng)
    }

    /// A crash fault begins. On the first one, the replica stops: its queued requests are returned to be reset
    /// (the driver resets the running ones, whose work is void from now: ``epoch`` changed); otherwise `nil`.
    public mutating func crash() -> Deque<Int32>? {
        crashes += 1
        guard crashes == 1 else { return nil }
        epoch &+= 1
        let queued = waiting
        waiting.removeAll()
        busy = 0
        return queued
    }

    /// A crash fault ends; returns whether the replica serves again (no other crash holds it down).
    public mutating func restart() -> Bool {
        crashes -= 1
        return crashes == 0 && active
    }

    /// Starts or stops the replica (scaling); a stopped replica finishes what it holds but refuses new requests.
    /// Returns whether anything changed.
    public mutating func setActive(_ running: Bool) -> Bool {
        guard active != running else { return false }
        active = running
        return true
    }

    /// Sets the effect of the active faults (see ``ReplicaModifiers``); work already started keeps its end.
    public mutating func setModifiers(_ new: ReplicaModifiers) {
        modifiers = new
        errorRate = max(baseErrorRate, new.errorRate ?? 0)
        serviceTime = new.serviceTime ?? baseServiceTime
    }
}
