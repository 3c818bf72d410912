//===----------------------------------------------------------------------===//
// meshsim — Live
//===----------------------------------------------------------------------===//

import DequeModule
import LiveHTTP
public import NIOCore
import NIOPosix
import SimCore
import SimRandom

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Emulated backends: one HTTP/1.1 server per replica on 127.0.0.1, each with worker slots, a bounded queue, service
/// times drawn from the simulator's distributions (waited with event-loop timers, never busy loops), an error
/// probability and a fault timeline in wall time.
///
/// Each replica lives on one event loop (replicas are spread over the loops round-robin), so its connections,
/// workers and queue are touched by one thread only and need no locks.
public final class BackendServer: Sendable {
    /// The configuration it runs.
    public let configuration: BackendConfiguration
    private let group: any EventLoopGroup
    private let runtimes: [ReplicaRuntime]

    /// Prepares the servers on `group`; nothing listens until ``start()``.
    public init(configuration: BackendConfiguration, group: any EventLoopGroup) {
        self.configuration = configuration
        self.group = group
        var runtimes: [ReplicaRuntime] = []
        for (i, replica) in configuration.replicas.enumerated() {
            let stream = RandomStream(seed: configuration.seed, replication: 0, key: "live/\(replica.service)/\(i)")
            runtimes.append(
                ReplicaRuntime(
                    replica: replica,
                    loop: group.next(),
                    host: configuration.host,
                    random: stream,
                    healthPath: configuration.healthPath,
                    maxHeadBytes: configuration.maxHeadBytes
                )
            )
        }
        let cap =
            configuration.maxConnectionsPerReplica
            ?? BackendConfiguration.defaultMaxConnections(replicas: configuration.replicas.count)
        let timeouts = ConnectionTimeouts(
            header: UInt64(max(configuration.headerTimeout, 1)),
            body: UInt64(max(configuration.bodyTimeout, 1)),
            idle: UInt64(max(configuration.idleTimeout, 1))
        )
        for runtime in runtimes {
            runtime.maxRequestsPerConnection = configuration.maxRequestsPerConnection
            runtime.maxConnections = max(1, cap)
            runtime.timeouts = timeouts
        }
        self.runtimes = runtimes
    }

    /// Binds every initially active replica and schedules the fault timeline from now.
    ///
    /// - Throws: `LiveError.bindFailed` naming the port when one cannot be bound (for example, already in use).
    /// - Parameter schedulingFaults: whether the fault timeline starts now; pass `false` and call
    ///   ``scheduleFaults(from:)`` to align it with another clock (the load generator's start).
    public func start(schedulingFaults: Bool = true) async throws {
        for runtime in runtimes where runtime.replica.initiallyActive {
            try await runtime.loop.flatSubmit { runtime.listen() }.get()
        }
        if schedulingFaults { scheduleFaults(from: .now()) }
    }

    /// Schedules the fault timeline with `base` as its time zero (fault `at` offsets count from it).
    public func scheduleFaults(from base: NIODeadline) {
        for fault in configuration.faults {
            for index in fault.replicas where runtimes.indices.contains(index) {
                let runtime = runtimes[index]
                runtime.loop.execute { runtime.schedule(fault, from: base) }
            }
        }
    }

    /// Closes every listener and connection and cancels pending timers.
    public func stop() async {
        for runtime in runtimes {
            try? await runtime.loop.flatSubmit { runtime.shutdown() }.get()
        }
    }

    /// The port each replica listens on now (`nil` while it does not listen), in the order of the configuration: with
    /// port 0 in the configuration, the port the system chose.
    public func listeningPorts() async -> [Int?] {
        var ports: [Int?] = []
        for runtime in runtimes {
            ports.append(try? await runtime.loop.submit { runtime.listener?.localAddress?.port }.get())
        }
        return ports.map { $0 ?? nil }
    }

    /// Connections open now, over all replicas.
    public func openConnections() async -> Int {
        var total = 0
        for runtime in runtimes { total += (try? await runtime.loop.submit { runtime.openConnections }.get()) ?? 0 }
        return total
    }

    /// Requests answered so far (all replicas, health checks excluded), by status class: (2xx, 4xx, 5xx).
    public func answered() async -> (ok: Int, clientErrors: Int, serverErrors: Int) {
        var total = (ok: 0, clientErrors: 0, serverErrors: 0)
        for runtime in runtimes {
            if let counts = try? await runtime.loop.submit({ runtime.counts }).get() {
                total.ok += counts.ok
                total.clientErrors += counts.clientErrors
                total.serverErrors += counts.serverErrors
            }
        }
        return total
    }
}

/// Errors of the live half, with the exit code the CLI uses.
public enum LiveError: Error, CustomStringConvertible, Sendable {
    /// A port could not be bound.
    case bindFailed(host: String, port: Int, reason: String)
    /// A bad flag or unusable scenario for live mode.
    case invalid(String)
    /// A proxy binary is missing or failed to start.
    case proxy(String)

    public var description: String {
        switch self {
        case .bindFailed(let host, let port, let reason): return "cannot listen on \(host):\(port): \(reason)"
        case .invalid(let message): return message
        case .proxy(let message): return message
        }
    }
}

/// The state of one replica, confined to its event loop.
final class ReplicaRuntime: @unchecked Sendable {
    let replica: BackendReplica
    let loop: any EventLoop
    let host: String
    let random: RandomStream
    let healthPath: String
    let maxHeadBytes: Int
    /// Requests per connection before it is closed (0: no limit).
    var maxRequestsPerConnection = 0
    /// The most connections open at once; at the cap the listener stops reading (accepting).
    var maxConnections = Int.max
    /// Connections accepted and not yet closed.
    private(set) var openConnections = 0
    /// Accepting is paused at the cap.
    private var acceptPaused = false
    /// The listener's current accepts per wake-up (lowered near the cap so one wake-up cannot pass it).
    private var acceptBatch = ReplicaRuntime.maxAcceptBatch
    /// The request timeouts of its connections.
    var timeouts = ConnectionTimeouts(header: 60_000_000_000, body: 60_000_000_000, idle: 75_000_000_000)

    /// Accepts per wake-up of the listener away from the cap.
    static let maxAcceptBatch = 64

    /// Workers busy.
    var busy = 0
    /// Requests waiting for a worker.
    var queue = Deque<BackendConnectionHandler>()
    /// Active crash faults (listening stops while > 0).
    var crashes = 0
    /// Product of active slowdown factors.
    var slowdown = 1.0
    /// Active error-rate faults.
    var errorRates: [Double] = []
    /// Active service-time overrides (the last one wins).
    var serviceTimes: [Distribution] = []
    /// No request completes before this uptime (ns): a stop-the-world pause.
    var pausedUntil: UInt64 = 0
    /// Bumped at every crash, so work started before it is forgotten.
    var epoch = 0
    var listener: (any Channel)?
    var connections: [ObjectIdentifier: any Channel] = [:]
    var counts = (ok: 0, clientErrors: 0, serverErrors: 0)
    var stopped = false

    init(
        replica: BackendReplica,
        loop: any EventLoop,
        host: String,
        random: RandomStream,
        healthPath: String,
        maxHeadBytes: Int
    ) {
        self.replica = replica
        self.loop = loop
        self.host = host
        self.random = random
        self.healthPath = healthPath
        self.maxHeadBytes = maxHeadBytes
    }

    /// Starts listening on the replica's port.
    func listen() -> EventLoopFuture<Void> {
        guard listener == nil, !stopped else { return loop.makeSucceededVoidFuture() }
        let bootstrap = ServerBootstrap(group: loop, childGroup: loop)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.maxMessagesPerRead, value: UInt(Self.maxAcceptBatch))
            .serverChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    listener = channel
                    acceptPaused = false
                    acceptBatch = Self.maxAcceptBatch
                    updateAcceptGate()
                }
            }
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    openConnections += 1
                    updateAcceptGate()
                    channel.closeFuture.whenComplete { [self] _ in
                        openConnections -= 1
                        updateAcceptGate()
                    }
                    let handler = BackendConnectionHandler(replica: self)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        let (host, port) = (self.host, replica.port)
        return bootstrap.bind(host: host, port: port).flatMapError { error in
            self.listener = nil
            var reason = "\(error)"
            if (error as? IOError)?.errnoCode == EADDRINUSE {
                reason = PortOwner.describe(port: port) ?? "the address is already in use"
            }
            return self.loop.makeFailedFuture(LiveError.bindFailed(host: host, port: port, reason: reason))
        }.map { channel in
            self.listener = channel
        }
    }

    /// Keeps the listener below the connection cap: near it, fewer accepts per wake-up (so one wake-up cannot pass
    /// it); at it, no reading at all, so further connections wait in the kernel's listen queue instead of costing a
    /// descriptor (or, past the descriptor limit, an accept that fails at once and wakes the loop again and again).
    ///
    /// - Complexity: O(1); touches the listener's options only when the batch size or the pause changes, that is near
    ///   the cap.
    private func updateAcceptGate() {
        guard let listener, !stopped else { return }
        let room = maxConnections - openConnections
        if room <= 0 {
            if !acceptPaused {
                acceptPaused = true
                listener.setOption(.autoRead, value: false).whenFailure { _ in }
            }
            return
        }
        let batch = min(room, Self.maxAcceptBatch)
        if batch != acceptBatch {
            acceptBatch = batch
            listener.setOption(.maxMessagesPerRead, value: UInt(batch)).whenFailure { _ in }
        }
        if acceptPaused {
            acceptPaused = false
            listener.setOption(.autoRead, value: true).whenFailure { _ in }
        }
    }

    /// Stops listening and resets every open connection (a crash).
    func crash() {
        listener?.close(promise: nil)
        listener = nil
        for channel in connections.values {
            // SO_LINGER 0: close sends RST, as a crashed process's kernel would.
            if let provider = channel as? any SocketOptionProvider {
                provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
            } else {
                channel.close(promise: nil)
            }
        }
        connections.removeAll()
        queue.removeAll()
        busy = 0
        epoch += 1
    }

    /// Closes everything for good.
    func shutdown() -> EventLoopFuture<Void> {
        stopped = true
        let closing = listener?.close() ?? loop.makeSucceededVoidFuture()
        listener = nil
        for channel in connections.values { channel.close(promise: nil) }
        connections.removeAll()
        return closing.recover { _ in }
    }

    /// The error probability now.
    var errorRate: Double { errorRates.reduce(replica.errorRate, max) }

    /// Admits a request from `connection`: to a worker, to the queue, or a 503 when the queue is full.
    func admit(_ connection: BackendConnectionHandler) {
        if busy < replica.workers {
            busy += 1
            startService(connection)
        } else if queue.count < replica.queueCapacity {
            connection.queued = true
            queue.append(connection)
        } else {
            connection.respond(.unavailable)
        }
    }

    /// Draws a service time and schedules the answer.
    func startService(_ connection: BackendConnectionHandler) {
        let distribution = serviceTimes.last ?? replica.serviceTime
        let sample = Double(distribution.sample(using: random)) * slowdown / replica.speed
        // NaN (a zero draw times an infinite stack of slowdowns) counts as zero; at most an hour.
        let nanos = min(max(clampToNanoseconds(sample), 0), 3_600_000_000_000)
        let failing = random.bernoulli(errorRate)
        let completion = ServiceCompletion(replica: self, connection: connection, epoch: epoch, failing: failing)
        if nanos == 0 && pausedUntil <= NIODeadline.now().uptimeNanoseconds {
            finish(completion)
        } else {
            _ = try? loop.scheduleCallback(in: .nanoseconds(nanos), handler: completion)
        }
    }

    /// A worker finished: answer, then take the next queued request.
    func finish(_ completion: ServiceCompletion) {
        guard completion.epoch == epoch else { return }
        let now = NIODeadline.now().uptimeNanoseconds
        if now < pausedUntil {
            _ = try? loop.scheduleCallback(at: .uptimeNanoseconds(pausedUntil), handler: completion)
            return
        }
        // Free the worker before answering: the answer may let the same connection's next request in at once.
        busy -= 1
        completion.connection.respond(completion.failing ? .serverError : .ok)
        while busy < replica.workers, let next = queue.popFirst() {
            next.queued = false
            guard next.isOpen else { continue }
            busy += 1
            startService(next)
        }
    }

    /// Schedules a fault's start and end on this loop.
    func schedule(_ fault: LiveFault, from base: NIODeadline) {
        let start = base + .nanoseconds(fault.at)
        loop.scheduleTask(deadline: start) { self.apply(fault, base: base, starting: true) }
        if let duration = fault.duration {
            loop.scheduleTask(deadline: start + .nanoseconds(duration)) {
                self.apply(fault, base: base, starting: false)
            }
        }
    }

    private func apply(_ fault: LiveFault, base: NIODeadline, starting: Bool) {
        guard !stopped else { return }
        switch fault.kind {
        case .crash:
            crashes += starting ? 1 : -1
            if starting && crashes == 1 { crash() }
            if !starting && crashes == 0 { _ = listen() }
        case .slowdown(let factor):
            slowdown = starting ? slowdown * factor : slowdown / factor
        case .errors(let rate):
            if starting {
                errorRates.append(rate)
            } else if let i = errorRates.firstIndex(of: rate) {
                errorRates.remove(at: i)
            }
        case .serviceTime(let distribution):
            if starting {
                serviceTimes.append(distribution)
            } else if let i = serviceTimes.firstIndex(of: distribution) {
                serviceTimes.remove(at: i)
            }
        case .pause(let every, let length):
            guard starting else { return }
            let end = fault.duration.map { base + .nanoseconds(fault.at + $0) }
            pauseLoop(every: every, length: length, until: end)
        }
    }

    private func pauseLoop(every: Int64, length: Int64, until end: NIODeadline?) {
        guard !stopped else { return }
        let now = NIODeadline.now()
        if let end, now >= end { return }
        pausedUntil = max(pausedUntil, (now + .nanoseconds(length)).uptimeNanoseconds)
        loop.scheduleTask(in: .nanoseconds(max(every, 1))) { self.pauseLoop(every: every, length: length, until: end) }
    }
}

/// The answer of one worker, delivered by an event-loop timer.
struct ServiceCompletion: NIOScheduledCallbackHandler, @unchecked Sendable {
    let replica: ReplicaRuntime
    let connection: BackendConnectionHandler
    let epoch: Int
    let failing: Bool

    func handleScheduledCallback(eventLoop: some EventLoop) { replica.finish(self) }
}

/// The request timeouts of a connection, in ns.
struct ConnectionTimeouts: Sendable {
    /// A whole request head, from its first byte (or from the accept).
    var header: UInt64
    /// Between two reads of a request body.
    var body: UInt64
    /// A keep-alive connection between requests.
    var idle: UInt64

    /// The shortest of the three: no phase that starts later can end before this much time from now.
    var shortest: UInt64 { min(header, body, idle) }
}
