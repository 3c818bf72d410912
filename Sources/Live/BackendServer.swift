//===----------------------------------------------------------------------===//
// meshsim — Live
//===----------------------------------------------------------------------===//

import Limiters
import LiveHTTP
import MeshTLS
public import NIOCore
import NIOPosix
import NIOSSL
import SharedModel
import SimCore
import SimRandom
import Spec

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
        for replica in configuration.replicas {
            // The simulator's stream keys: the same seed draws the same service times and errors in both halves.
            let keys = ReplicaStateMachine.streamKeys(service: replica.service, index: replica.index)
            let machine = ReplicaStateMachine(
                service: replica.serviceSpec,
                replica: replica.replicaSpec,
                serviceStream: RandomStream(seed: configuration.seed, replication: 0, key: keys.serviceTime),
                errorStream: RandomStream(seed: configuration.seed, replication: 0, key: keys.errors)
            )
            runtimes.append(
                ReplicaRuntime(
                    replica: replica,
                    machine: machine,
                    faults: configuration.faults,
                    loop: group.next(),
                    host: configuration.host,
                    healthPath: configuration.healthPath,
                    maxHeadBytes: configuration.maxHeadBytes,
                    tls: configuration.security?.contexts[replica.service],
                    authorization: configuration.security?.authorization
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

    /// Schedules the fault timeline with `base` as its time zero (fault `at` offsets count from it): the replicas'
    /// model time is measured from `base` from now on.
    public func scheduleFaults(from base: NIODeadline) {
        for runtime in runtimes {
            runtime.loop.execute { runtime.scheduleFaults(from: base) }
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

    /// Requests an authorization rule denied so far (answered 403), all replicas.
    public func deniedCount() async -> Int {
        var total = 0
        for runtime in runtimes { total += (try? await runtime.loop.submit { runtime.counts.denied }.get()) ?? 0 }
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

/// The state of one replica, confined to its event loop: the shared replica state machine, driven with the loop's
/// clock, and the sockets around it.
final class ReplicaRuntime: @unchecked Sendable {
    let replica: BackendReplica
    let loop: any EventLoop
    let host: String
    let healthPath: String
    let maxHeadBytes: Int
    /// Workers, queue, draws, faults and concurrency limit: the simulator's replica.
    var machine: ReplicaStateMachine
    /// The fault timeline (the scenario's faults; those that select this replica act on it).
    let faults: [FaultSpec]
    /// Which faults are active now.
    private var faultActive: [Bool]
    /// Time zero of the model's timeline (fault offsets and pause schedules count from it).
    private var base: NIODeadline
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

    /// The requests the machine holds (queued or in service), by token: the connection and its concurrency permit.
    private var slots: [(connection: BackendConnectionHandler, permit: ConcurrencyPermit?)?] = []
    /// Free tokens.
    private var freeSlots: [Int32] = []
    var listener: (any Channel)?
    var connections: [ObjectIdentifier: any Channel] = [:]
    var counts = (ok: 0, clientErrors: 0, serverErrors: 0, denied: 0)
    /// The replica's mutual-TLS context (its service's identity), if the mesh runs mutual TLS.
    let tls: NIOSSLContext?
    /// The authorization rules the replica's side of the mesh enforces, if any.
    let authorization: AuthorizationPolicy?
    var stopped = false

    init(
        replica: BackendReplica,
        machine: ReplicaStateMachine,
        faults: [FaultSpec],
        loop: any EventLoop,
        host: String,
        healthPath: String,
        maxHeadBytes: Int,
        tls: NIOSSLContext? = nil,
        authorization: AuthorizationPolicy? = nil
    ) {
        self.replica = replica
        self.tls = tls
        self.authorization = authorization
        self.machine = machine
        self.faults = faults
        self.faultActive = Array(repeating: false, count: faults.count)
        self.loop = loop
        self.base = loop.now
        self.host = host
        self.healthPath = healthPath
        self.maxHeadBytes = maxHeadBytes
    }

    /// Now on the model's timeline: nanoseconds since ``base``.
    private var now: Int64 { Int64(clamping: loop.now.uptimeNanoseconds) - Int64(clamping: base.uptimeNanoseconds) }

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
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                        try channel.pipeline.syncOperations.addHandler(
                            MeshPeerVerifier(expected: nil) { handler.peer = $0.name }
                        )
                    }
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

    /// Stops listening and resets every open connection (a crash); the work in hand is void (the machine's epoch
    /// changed), its slots are freed.
    private func crash() {
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
        slots.removeAll()
        freeSlots.removeAll()
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

    /// A request from `connection` arrives: the machine starts it, queues it, or it is answered 503 at once.
    func admit(_ connection: BackendConnectionHandler) {
        let token: Int32
        if let free = freeSlots.popLast() {
            token = free
        } else {
            token = Int32(slots.count)
            slots.append(nil)
        }
        let time = now
        switch machine.arrive(token, now: time) {
        case .refused, .limited:
            freeSlots.append(token)
            connection.respond(.unavailable)
        case .rejected(let permit):
            freeSlots.append(token)
            if let permit { machine.releasePermit(permit, outcome: .dropped, now: time) }
            connection.respond(.unavailable)
        case .queued(let permit):
            slots[Int(token)] = (connection, permit)
        case .started(let finish, let permit):
            slots[Int(token)] = (connection, permit)
            schedule(token: token, finish: finish, now: time)
        }
    }

    /// Arms the timer that ends the work of `token` at `finish` (model time), or ends it now.
    private func schedule(token: Int32, finish end: Int64, now time: Int64) {
        let completion = ServiceCompletion(replica: self, token: token, epoch: machine.epoch)
        if end <= time {
            finish(completion)
        } else {
            _ = try? loop.scheduleCallback(in: .nanoseconds(end - time), handler: completion)
        }
    }

    /// A worker's work ended: draw the error, give the worker to the next queued request, then answer (the answer
    /// may let the same connection's next request in at once).
    func finish(_ completion: ServiceCompletion) {
        var completion = completion
        while true {
            guard completion.epoch == machine.epoch, let slot = slots[Int(completion.token)] else { return }
            slots[Int(completion.token)] = nil
            freeSlots.append(completion.token)
            let time = now
            let failing = machine.drawError()
            let next = machine.releaseWorker(now: time)
            if let permit = slot.permit {
                machine.releasePermit(permit, outcome: failing ? .ignored : .success, now: time)
            }
            slot.connection.respond(failing ? .serverError : .ok)
            guard let (token, end) = next else { return }
            completion = ServiceCompletion(replica: self, token: token, epoch: machine.epoch)
            if end > time {
                _ = try? loop.scheduleCallback(in: .nanoseconds(end - time), handler: completion)
                return
            }
        }
    }

    /// Arms the fault timeline with `base` as time zero.
    func scheduleFaults(from base: NIODeadline) {
        self.base = base
        for (i, fault) in faults.enumerated() where touches(fault) {
            let start = base + .nanoseconds(fault.at.nanoseconds)
            loop.scheduleTask(deadline: start) { self.setFault(i, active: true) }
            if let end = fault.end {
                loop.scheduleTask(deadline: base + .nanoseconds(end)) { self.setFault(i, active: false) }
            }
        }
    }

    /// Whether `fault` acts on this replica.
    private func touches(_ fault: FaultSpec) -> Bool { fault.kind.selects(replica.address) }

    /// Fault `i` starts or ends: a crash stops or restarts the replica; anything else changes its modifiers,
    /// recomputed from every active fault in the scenario's order (as the simulator does).
    private func setFault(_ i: Int, active: Bool) {
        guard !stopped, faultActive[i] != active else { return }
        faultActive[i] = active
        if faults[i].kind.crashes {
            if active {
                if machine.crash() != nil { crash() }
            } else if machine.restart() {
                _ = listen()
            }
            return
        }
        var modifiers = ReplicaModifiers()
        for (j, fault) in faults.enumerated() where faultActive[j] && touches(fault) { modifiers.apply(fault) }
        machine.setModifiers(modifiers)
    }
}

/// The answer of one worker, delivered by an event-loop timer.
struct ServiceCompletion: NIOScheduledCallbackHandler, @unchecked Sendable {
    let replica: ReplicaRuntime
    let token: Int32
    let epoch: UInt32

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
