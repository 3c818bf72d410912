//===----------------------------------------------------------------------===//
// meshsim — MeshModel
//===----------------------------------------------------------------------===//

import Balancers
import DequeModule
public import Reports
import Retries
import SharedModel
public import SimCore
import SimKernel
import SimRandom
public import Spec

/// One replication of a mesh: the model's state driven by one event queue, single-threaded.
///
/// A value type, so that state access needs no runtime exclusivity checks in the event loop.
///
/// A request from a client is a *call* to a service; each try of a call is an *attempt*, served by one replica.
/// A replica runs an attempt's local work on a worker slot (waiting in a bounded FIFO queue when all are busy),
/// then makes its downstream calls in order while holding the worker, then answers. Messages cross the network
/// with the delay of the link between the two zones. Calls and attempts live in slabs reused through free lists,
/// so a steady run allocates nothing per request; an M/M/1 request costs exactly two events (its arrival and the
/// end of its service), because zero-delay hops are handled inline and absent features cost no event or draw.
public struct Simulation {
    /// The spec being simulated.
    public let spec: MeshSpec
    /// The seed of this replication's streams.
    public let seed: UInt64
    /// Called before each event is handled, with the event's time (for debugging and ordering tests).
    public var trace: ((SimInstant, MeshEvent) -> Void)?
    /// Called every 65,536 events with the current simulated time (for progress lines).
    public var progress: ((SimInstant) -> Void)?
    /// The run stops after this many events (a safety limit for tests and fuzzing).
    public var eventLimit: UInt64 = .max
    /// The run stops when this many events in a row happen at the same instant (far beyond any real model): a zero-delay loop.
    public var stallLimit = 1_000_000
    /// The run stops, with ``Result/memoryOverrun`` set, once ``modelBytes()`` passes this many bytes (checked
    /// every 65,536 events): a queue that grows without bound ends in a message, not in the machine's swap.
    public var memoryBudget = Int.max

    var queue = EventQueue<MeshEvent>(reservingCapacity: 1024)
    var recorder: ReplicationRecorder

    // Model state (see Simulation+State.swift for the types).
    var replicas = Slab<ReplicaState>()
    var serviceFirstReplica: [Int] = []
    var views: [[EndpointState]] = []
    /// The replicas in each service's endpoint list per zone (the originating cluster of zone-aware routing).
    var viewZoneCounts: [[Int]] = []
    var edges = Slab<CallEdge>()
    /// Per edge, the event-queue lane of its per-try timeouts (-1 without a timeout).
    var timeoutLanes: [Int32] = []
    /// Mutual TLS's connections and costs, when the scenario turns it on (see Simulation+Security.swift).
    var security: SecurityState?
    /// Per edge and request path, whether authorization denies the edge's caller; empty when nothing is denied.
    var edgeDenied: [[Bool]] = []
    /// The edges that call each service (to update their views on discovery changes).
    var edgesByTarget: [[Int32]] = []
    var clientSites: [CallSite] = []
    var callSites: [[CallSite]] = []
    /// Every request path and host named by clients, for routes.
    var pathNames: [String] = []
    var hostNames: [String] = []
    var clients = Slab<ClientState>()
    /// The links in use, in order of first use (see ``link(from:to:)``).
    var links = Slab<LinkState>()
    /// For each ordered zone pair (`from × zones + to`), its index in `links`, or -1 before its first use.
    var linkIndex: [Int32] = []
    // The per-request records and the model's parts live in slabs: written in place, with no copy-on-write check
    // per write (see `Slab`).
    var calls = Slab<CallState>(capacity: 256)
    var freeCalls = Slab<Int32>(capacity: 256)
    var attempts = Slab<AttemptState>(capacity: 256)
    var freeAttempts = Slab<Int32>(capacity: 256)
    var faultActive: [Bool] = []
    var scaleChanges: [[Int]] = []
    var rootsInFlight = 0
    var queuedTotal = 0
    var busyTotal = 0
    /// Worker slots of running (active, not crashed) replicas.
    var capacityTotal = 0
    var capacityArea = 0.0
    /// Time integrals over the measured span [warmup, duration): client requests in flight, busy workers.
    var inFlightArea = 0.0
    var busyArea = 0.0
    var lastEventTime: Int64 = 0
    let warmupNs: Int64
    let durationNs: Int64
    let refusedCostNs: Int64
    let propagationNs: Int64

    /// Creates replication `replication`'s model of `spec`, with streams derived from `seed`.
    ///
    /// - Parameters:
    ///   - spec: a validated mesh.
    ///   - seed: the replication's seed; every stream is derived from it and a stable component key.
    ///   - variant: the variant's name, written in the `timeseries.csv` rows.
    public init(spec: MeshSpec, seed: UInt64, variant: String = "base") {
        self.spec = spec
        self.seed = seed
        self.durationNs = spec.duration.nanoseconds
        self.warmupNs = spec.warmup.nanoseconds
        self.refusedCostNs = spec.discovery.refusedCost.nanoseconds
        self.propagationNs = spec.discovery.propagationDelay.nanoseconds
        self.recorder = ReplicationRecorder(
            warmup: spec.warmup.nanoseconds,
            duration: spec.duration.nanoseconds,
            window: spec.window.nanoseconds,
            rowPrefix: RowKey(scenario: spec.name, variant: variant, seed: seed, mode: .simulated).prefix
        )
        build()
    }

    /// The stream for component `key` of this replication.
    func stream(_ key: String) -> RandomStream {
        RandomStream(seed: StreamSeed.derive(seed: seed, replication: 0, key: key))
    }

    // MARK: - Running

    /// The result of a finished replication.
    public struct Result: Sendable {
        /// The `summary.csv` metrics.
        public var summary: MetricRow
        /// The `timeseries.csv` rows (no header).
        public var timeseries: String
        /// Events handled.
        public var events: UInt64
        /// Client requests finished in the whole run (warm-up and drain included).
        public var completed: UInt64
        /// Simulated time at the end of the run.
        public var endTime: SimInstant
        /// Set when the run stopped because simulated time stopped advancing (a zero-delay loop), at that time.
        public var stalledAt: SimInstant?
        /// Whether the run stopped at ``Simulation/eventLimit``.
        public var hitEventLimit = false
        /// Set when the run stopped because the model passed ``Simulation/memoryBudget``.
        public var memoryOverrun: MemoryOverrun?
        /// What the policies did over the measured span.
        public var counters = PolicyCounters()
        /// The mean adaptive concurrency limit over the measured span, if a limiter ran.
        public var concurrencyLimit: Double?
    }

    /// What the model held when it passed its memory budget, and where the requests piled up.
    public struct MemoryOverrun: Sendable, Equatable {
        /// The model's estimated bytes.
        public var bytes: Int
        /// The budget it passed.
        public var budget: Int
        /// The simulated time.
        public var at: SimInstant
        /// The service whose replicas held the most requests (queued or in service).
        public var service: String
        /// Requests waiting in that service's queues.
        public var queued: Int
        /// Whether that service's queue is unbounded.
        public var unboundedQueue: Bool
    }

    /// The bytes the model's growing state holds: requests and attempts in flight, pending events, queues and the
    /// time-series rows so far (fixed-size state is left out).
    ///
    /// - Complexity: O(replicas).
    public func modelBytes() -> Int {
        var bytes = calls.capacity * MemoryLayout<CallState>.stride
        bytes += attempts.capacity * MemoryLayout<AttemptState>.stride
        bytes += (freeCalls.capacity + freeAttempts.capacity) * 4
        bytes += queue.storageBytes
        bytes += recorder.timeseries.utf8.count
        for r in replicas.indices { bytes += replicas[r].machine.waiting.count * 4 }
        return bytes
    }

    /// Where the model's requests are, for a memory overrun's message.
    func memoryOverrun(bytes: Int) -> MemoryOverrun {
        var held = Array(repeating: 0, count: spec.services.count)
        var queued = Array(repeating: 0, count: spec.services.count)
        for r in replicas.indices {
            let s = Int(replicas[r].service)
            queued[s] += replicas[r].machine.waiting.count
            held[s] += replicas[r].machine.waiting.count + Int(replicas[r].busy)
        }
        let worst = held.indices.max { held[$0] < held[$1] } ?? 0
        return MemoryOverrun(
            bytes: bytes,
            budget: memoryBudget,
            at: queue.now,
            service: spec.services.isEmpty ? "" : spec.services[worst].name,
            queued: queued.isEmpty ? 0 : queued[worst],
            unboundedQueue: spec.services.isEmpty ? false : spec.services[worst].queueCapacity >= Int(Int32.max)
        )
    }

    /// Runs the replication to its end: arrivals stop at `duration`, then outstanding requests have `drain` to finish.
    public mutating func run() -> Result {
        start()
        let limit = SimInstant(nanoseconds: durationNs) + spec.drain
        var sinceProgress = 0
        var sameInstant = 0
        var stalledAt: SimInstant?
        var overrun: MemoryOverrun?
        while let event = queue.popNext(notAfter: limit) {
            let now = queue.now.nanoseconds
            if now >= recorder.nextBoundary {
                recorder.closeWindows(through: now, inFlight: rootsInFlight, queueDepth: queuedTotal)
            }
            if now != lastEventTime {
                integrate(until: now)
                sameInstant = 0
            } else {
                sameInstant &+= 1
                if sameInstant >= stallLimit {
                    stalledAt = queue.now
                    break
                }
            }
            if let trace { trace(queue.now, event) }
            handle(event)
            if now >= durationNs && rootsInFlight == 0 { break }
            if queue.eventsProcessed >= eventLimit { break }
            sinceProgress &+= 1
            if sinceProgress == 65_536 {
                sinceProgress = 0
                progress?(queue.now)
                let bytes = modelBytes()
                if bytes > memoryBudget {
                    overrun = memoryOverrun(bytes: bytes)
                    break
                }
            }
        }
        integrate(until: max(queue.now.nanoseconds, durationNs))
        let end = max(queue.now.nanoseconds, durationNs)
        let window = spec.window.nanoseconds
        let lastBoundary = (end + window - 1) / window * window
        recorder.closeWindows(through: max(lastBoundary, window), inFlight: rootsInFlight, queueDepth: queuedTotal)
        var unfinished: UInt64 = 0
        for call in calls where call.live && call.parent < 0 && recorder.isMeasured(start: call.start) {
            unfinished += 1
        }
        var summary = recorder.summaryRow(unfinished: unfinished)
        let span = Double(durationNs - warmupNs)
        summary.meanInFlight = inFlightArea / span
        summary.utilization = capacityArea > 0 ? busyArea / capacityArea : nil
        return Result(
            summary: summary,
            timeseries: recorder.timeseries,
            events: queue.eventsProcessed,
            completed: recorder.finished,
            endTime: queue.now,
            stalledAt: stalledAt,
            hitEventLimit: queue.eventsProcessed >= eventLimit,
            memoryOverrun: overrun,
            counters: recorder.summaryCounters,
            concurrencyLimit: recorder.summaryConcurrencyLimit
        )
    }

    /// Adds the gauges' values since the last event to their time integrals, within the measured span.
    @inline(__always)
    mutating func integrate(until now: Int64) {
        let low = max(lastEventTime, warmupNs)
        let high = min(now, durationNs)
        if high > low {
            let dt = Double(high - low)
            inFlightArea += Double(rootsInFlight) * dt
            busyArea += Double(busyTotal) * dt
            capacityArea += Double(capacityTotal) * dt
        }
        lastEventTime = now
    }

    mutating func handle(_ event: MeshEvent) {
        switch event {
        case .arrival(let client, let user):
            arrival(client: Int(client), user: user)
        case .deliver(let a, let generation):
            guard attempts[Int(a)].generation == generation else { return }
            arrive(Int(a))
        case .serviceDone(let a, let generation):
            guard attempts[Int(a)].generation == generation else { return }
            serviceDone(Int(a))
        case .response(let a, let generation):
            guard attempts[Int(a)].generation == generation else { return }
            receive(Int(a))
        case .timeout(let c, let generation, let number):
            timeout(call: Int(c), generation: generation, attemptNumber: number)
        case .hedge(let c, let generation, let number):
            hedgeTimer(call: Int(c), generation: generation, attemptNumber: number)
        case .retry(let c, let generation):
            guard calls[Int(c)].generation == generation, calls[Int(c)].live else { return }
            if calls[Int(c)].deadline.isExpired(at: queue.now) {
                finishCall(Int(c), outcome: .timedOut)  // the backoff outlasted the deadline
            } else {
                sendAttempt(call: Int(c))
            }
        case .outlierSweep(let edge):
            sweepOutliers(edge: Int(edge))
        case .healthCheck(let edge, let host, let checker):
            startHealthCheck(edge: Int(edge), host: Int(host), checker: checker)
        case .healthCheckDone(let edge, let host, let checker, let result):
            finishHealthCheck(edge: Int(edge), host: Int(host), checker: checker, result: result)
        case .dispatchPending(let edge):
            dispatchPending(edge: Int(edge))
        case .healthRecovery(let edge):
            edges[Int(edge)].setView(edges[Int(edge)].fullView, at: queue.now)
        case .faultStart(let index):
            startFault(Int(index))
        case .faultEnd(let index):
            endFault(Int(index))
        case .discovery(let service, let replica, let present):
            applyDiscovery(service: Int(service), replica: Int32(replica), present: present)
        }
    }

    /// The current simulated time in nanoseconds.
    @inline(__always) var now: Int64 { queue.now.nanoseconds }

    @inline(__always) mutating func schedule(_ event: MeshEvent, at time: Int64) {
        queue.schedule(event, at: SimInstant(nanoseconds: time))
    }
}
