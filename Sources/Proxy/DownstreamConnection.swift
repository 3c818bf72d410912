//===----------------------------------------------------------------------===//
// meshsim — Proxy
//===----------------------------------------------------------------------===//

import Breakers
import LiveHTTP
import NIOCore
import NIOPosix
import Prometheus
import Retries
import SharedModel
import SimCore
import Spec

/// One client connection: reads a request head, routes it to a cluster, lets the cluster's balancer pick an endpoint,
/// passes the request to it on a pooled keep-alive connection and the response back, one request at a time.
///
/// Framing is checked on the way in both directions (RFC 9112 §6: a head with both `Content-Length` and
/// `Transfer-Encoding`, two differing lengths, a malformed chunk, obsolete line folding, a bare LF or a NUL is
/// answered 400 and the connection closed), so the proxy and the backend always agree on where a message ends.
/// Hop-by-hop headers are dropped in both directions (RFC 9110 §7.6.1) and `X-Forwarded-For` is added.
///
/// `autoRead` is off: the client is read only while the upstream can take its bytes, or while a head is awaited.
final class DownstreamConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        /// Between requests (or just accepted), nothing buffered.
        case idle
        /// Part of a request head has arrived.
        case head
        /// The request body is passing upstream.
        case body
        /// The request has passed; the response is awaited or passing back.
        case waiting
        /// The connection is being closed.
        case closing
    }

    let loop: ProxyLoop
    private var context: ChannelHandlerContext?
    private var buffer = ByteBuffer()
    private var reader: HTTPHeadReader
    private var phase = Phase.idle
    private var processing = false
    /// The connection's one timer, while armed, and when it fires (uptime ns). It is re-armed lazily: a phase that
    /// ends before it fires only clears ``deadline``, so a keep-alive request costs no timer operation.
    private var timer: NIOScheduledCallback?
    private var timerAt: UInt64 = 0
    /// When the current phase's timeout expires (uptime ns), if one runs.
    private var deadline: UInt64?
    /// `X-Forwarded-For: <client>\r\n`.
    private var forwardedFor = ByteBuffer()

    // The current exchange.
    /// Bumped per exchange, so that late connects and timers of an earlier one are ignored.
    private var exchangeID = 0
    private var cluster: ClusterState?
    /// The caller's mesh identity, when the listener runs mutual TLS (set before the first request is read).
    var peer: String?
    /// The attempt's place in an Envoy breaker's pool (returned when it ends).
    private var pool = PoolState.none
    private var endpoint = 0
    private var backend = 0
    private var started: UInt64 = 0
    private var requestBody = HTTPBodyForwarder(.none)
    private var requestComplete = false
    private var clientKeepAlive = true
    private var clientHTTP10 = false
    private var isHeadMethod = false
    private var upstream: UpstreamConnection?
    /// Request bytes waiting for the upstream connection.
    private var outgoing = ByteBuffer()
    private var responseStarted = false
    private var closeAfterResponse = false
    private var status = 0
    private var upstreamTimer: NIOScheduledCallback?
    /// An attempt is out (its endpoint, breaker permission and balancer count are held).
    private var attemptOpen = false
    /// Attempts made for the current request (retries included).
    private var attempts = 0
    /// The current attempt is a retry that holds a place in the cluster's retry budget.
    private var retryHeld = false
    /// The request head as the backend sees it, kept for a retry.
    private var requestHead = ByteBuffer()
    /// The request body as it passed, kept for a retry while it fits ``ProxyConfiguration/maxRetryBufferBytes``.
    private var replayBody = ByteBuffer()
    /// Whether the request can be sent again (its body fitted the retry buffer).
    private var replayable = false
    /// The backoff of the current request's retries (its own jitter state, as each simulated call has).
    private var backoff: Backoff?
    /// The current request's deadline (retries included): the cluster's `deadline`, or sooner if the client's
    /// ``DownstreamConnection/deadlineHeader`` says so.
    private var callDeadline = Deadline.none
    /// When the request body last had bytes (uptime ns), for the body timeout.
    private var lastBodyRead: UInt64 = 0

    init(loop: ProxyLoop) {
        self.loop = loop
        reader = HTTPHeadReader(
            maxHeadBytes: loop.shared.configuration.maxHeadBytes,
            maxHeaderCount: loop.shared.configuration.maxHeaderCount
        )
    }

    private var configuration: ProxyConfiguration { loop.shared.configuration }

    /// Whether the client takes more bytes without unbounded buffering.
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        loop.downstream[ObjectIdentifier(self)] = self
        let client = context.channel.remoteAddress?.ipAddress ?? "unknown"
        forwardedFor = ByteBuffer(string: "X-Forwarded-For: \(client)\r\n")
        loop.shared.metrics.accepted.increment()
        armTimer(configuration.headerTimeout)
    }

    func channelActive(context: ChannelHandlerContext) {
        context.read()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline = nil
        timer?.cancel()
        timer = nil
        loop.downstream[ObjectIdentifier(self)] = nil
        if cluster != nil {
            // The client left first: its upstream work is cancelled, the connection closed, not pooled.
            endExchange(.cancelled)
            upstream?.close()
            upstream = nil
        }
        phase = .closing
        self.context = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if phase == .idle {
            phase = .head
            armTimer(configuration.headerTimeout)
        } else if phase == .body {
            lastBodyRead = NIODeadline.now().uptimeNanoseconds
        }
        if buffer.readableBytes == 0 {
            buffer = incoming
        } else {
            buffer.writeBuffer(&incoming)
        }
        process(flushing: false)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        upstream?.flush()
        readIfWanted()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        upstream?.readIfWanted()
        context.fireChannelWritabilityChanged()
    }

    /// Asks for a read when the client's bytes have somewhere to go: a head is awaited, the upstream takes the body,
    /// or (while waiting for the response) little is buffered, so that a client that leaves is noticed.
    ///
    /// - Complexity: O(1).
    func readIfWanted() {
        guard let context else { return }
        let cap = configuration.maxBufferedBytes
        let wanted: Bool
        switch phase {
        case .idle, .head: wanted = true
        case .body: wanted = upstream.map { $0.isWritable } ?? (outgoing.readableBytes < cap)
        case .waiting: wanted = buffer.readableBytes < cap
        case .closing: wanted = false
        }
        if wanted { context.read() }
    }

    // MARK: - Requests

    /// Handles the buffered bytes: heads, then body bytes, until more must arrive or a response is awaited;
    /// `flushing`: flush what was written upstream (a read flushes once at its end instead).
    ///
    /// - Complexity: O(bytes consumed).
    private func process(flushing: Bool = true) {
        guard !processing else { return }
        processing = true
        defer { processing = false }
        loop: while context != nil {
            switch phase {
            case .idle, .head:
                guard buffer.readableBytes > 0 else { break loop }
                if phase == .idle {
                    phase = .head
                    armTimer(configuration.headerTimeout)
                }
                let head: HTTPForwardHead?
                do {
                    head = try reader.readRequestHead(&buffer)
                } catch .headerTooLarge {
                    reject(.headerTooLarge)
                    return
                } catch {
                    reject(.badRequest)
                    return
                }
                guard let head else { break loop }
                cancelTimer()
                startExchange(head)
            case .body:
                let slice: ByteBuffer
                do {
                    slice = try requestBody.take(&buffer)
                } catch {
                    requestFailed()
                    return
                }
                if slice.readableBytes > 0 {
                    if let upstream { upstream.write(slice) } else { outgoing.writeImmutableBuffer(slice) }
                    if replayable {
                        if replayBody.readableBytes + slice.readableBytes <= configuration.maxRetryBufferBytes {
                            replayBody.writeImmutableBuffer(slice)
                        } else {
                            replayable = false
                            replayBody = ByteBuffer()
                        }
                    }
                }
                guard requestBody.isComplete else { break loop }
                requestComplete = true
                phase = .waiting
                cancelTimer()
            case .waiting, .closing:
                break loop
            }
        }
        // Body bytes taken outside a read (a pipelined request started when the previous response ended) must not
        // wait for the client's next read to be flushed.
        if flushing { upstream?.flush() }
        if buffer.readableBytes == 0 {
            buffer.clear()
        } else if buffer.readerIndex > 4096 {
            buffer.discardReadBytes()
        }
    }

    /// Routes and balances a request whose head has arrived, and sends it upstream.
    ///
    /// - Complexity: O(routes + head length) plus the balancer's pick; one head buffer, no strings.
    private func startExchange(_ head: HTTPForwardHead) {
        let shared = loop.shared
        let route = head.bytes.withUnsafeReadableBytes { bytes in
            let host =
                head.host.map { UnsafeRawBufferPointer(rebasing: bytes[$0]) }
                ?? UnsafeRawBufferPointer(start: nil, count: 0)
            return shared.routes.match(host: host, path: UnsafeRawBufferPointer(rebasing: bytes[head.path]))
        }
        guard let route else {
            respondLocally(.noRoute)
            return
        }
        let clusterIndex = shared.routes.cluster(route: route, using: &loop.routeRandom)
        let cluster = loop.clusters[clusterIndex]
        if let authorization = configuration.tls?.authorization, !isAuthorized(head, authorization, cluster.spec) {
            shared.metrics.authzDenials[clusterIndex].increment()
            respondLocally(.forbidden)
            return
        }
        let now = loop.now()
        guard !loop.stopping, loop.pending < configuration.maxPendingPerLoop else {
            respondLocally(.overload)
            return
        }
        // The call edge's decisions, in the simulator's order: the call (budget, rate limit), then each attempt
        // (throttle, breaker and its pool, the endpoint).
        guard cluster.admit(at: now) else {
            cluster.edge.callFinished(success: false, at: now)
            respondLocally(.rateLimited)
            return
        }
        loop.pending += 1
        self.cluster = cluster
        attempts = 0
        retryHeld = false
        backoff = cluster.spec.policy.backoff
        requestBody = HTTPBodyForwarder(head.framing)
        requestComplete = requestBody.isComplete
        replayable = cluster.spec.policy.retries > 0
        replayBody = ByteBuffer()
        clientKeepAlive = head.keepAlive
        clientHTTP10 = head.isHTTP10
        isHeadMethod = head.isHeadMethod
        responseStarted = false
        closeAfterResponse = false
        status = 0
        phase = requestComplete ? .waiting : .body
        if !requestComplete {
            // The body may pause at most the body timeout between reads (one timer, re-armed lazily).
            lastBodyRead = NIODeadline.now().uptimeNanoseconds
            armTimer(configuration.bodyTimeout)
        }
        if head.expectsContinue && !requestComplete && !head.isHTTP10, let context {
            // RFC 9110 §10.1.1: the proxy answers the expectation itself (and did not pass it on), so the client
            // sends its body at once instead of waiting for a backend that may never send 100.
            context.writeAndFlush(wrapOutboundOut(LocalAnswer.continueInterim), promise: nil)
        }

        // The head as the backend sees it: the start line, the end-to-end lines, X-Forwarded-For (the deadline line
        // and the empty line are added per attempt).
        requestHead.clear()
        requestHead.reserveCapacity(head.bytes.readableBytes + forwardedFor.readableBytes)
        requestHead.writeImmutableBuffer(
            head.bytes.getSlice(at: head.startLine.lowerBound, length: head.startLine.count)!
        )
        requestHead.writeStaticString("\r\n")
        // Deadline propagation: the earlier of the cluster's `deadline` and the one the client passes on.
        callDeadline = cluster.spec.policy.deadline.map { Deadline.after($0, from: now) } ?? .none
        for line in head.forwardedLines {
            let slice = head.bytes.getSlice(at: line.lowerBound, length: line.count)!
            switch Self.deadlineMilliseconds(slice) {
            case .notDeadline:
                break
            case .milliseconds(let inherited):
                callDeadline = min(callDeadline, Deadline.after(.milliseconds(inherited), from: now))
                continue
            case .malformed:
                // A deadline the proxy cannot read is not passed on or guessed at: the request is refused.
                loop.pending -= 1
                self.cluster = nil
                cluster.edge.callFinished(success: false, at: now)
                respondLocally(.badRequest)
                return
            }
            requestHead.writeImmutableBuffer(slice)
        }
        requestHead.writeImmutableBuffer(forwardedFor)
        if callDeadline.isExpired(at: now) {
            // Nothing left of the inherited deadline: fail fast, as a simulated call does.
            attempts = 1
            lastFailure = .timeout
            finishLocally(.deadlineExpired, at: now)
            return
        }
        startAttempt(isRetry: false, at: now)
    }

    /// Makes the next attempt of the current request: the throttle and the breaker admit it, the balancer picks an
    /// endpoint, the per-try timer starts, and the request goes out on a pooled or new connection (a retry sends the
    /// kept head and body again).
    private func startAttempt(isRetry: Bool, at now: SimInstant) {
        guard let cluster else { return }
        let shared = loop.shared
        attempts += 1
        let (admission, opened) = cluster.admitAttempt(isRetry: isRetry, at: now)
        if opened { shared.metrics.breakerOpens[cluster.index].increment() }
        let pool: PoolState
        switch admission {
        case .admitted(let place): pool = place
        case .throttled:
            finishLocally(.throttled, at: now)
            return
        case .breakerRejected:
            finishLocally(.breakerOpen, at: now)
            return
        }
        guard let endpoint = cluster.pick(at: now) else {
            if cluster.edge.breaker != nil { cluster.edge.breaker!.cancel(isRetry: isRetry, pool: pool, at: now) }
            finishLocally(.noEndpoint, at: now)
            return
        }
        if isRetry { shared.metrics.retries[cluster.index].increment() }
        self.pool = pool
        cluster.attemptStarted(endpoint: endpoint, at: now)
        attemptOpen = true
        exchangeID &+= 1
        self.endpoint = endpoint
        backend = cluster.backendOfEndpoint[endpoint]
        started = UInt64(now.nanoseconds) &+ shared.startUptime
        outgoing = requestHead
        if callDeadline != .none {
            let remaining = max(0, (callDeadline.instant.nanoseconds - now.nanoseconds) / 1_000_000)
            outgoing.writeString(Self.deadlineHeader + ": \(remaining)\r\n")
        }
        outgoing.writeStaticString("\r\n")
        if isRetry { outgoing.writeImmutableBuffer(replayBody) }

        // The attempt's timeout: the cluster's per-try `timeout`, within the proxy's overall upstream timeout.
        let perTry = cluster.spec.policy.timeout
        let untilDeadline: SimDuration? =
            callDeadline == .none ? nil : .nanoseconds(max(1, callDeadline.instant.nanoseconds - now.nanoseconds))
        let attemptTimeout = [configuration.upstreamTimeout, perTry, untilDeadline].compactMap { $0 }.min()
        if let timeout = attemptTimeout, let context {
            let id = exchangeID
            upstreamTimer = try? context.eventLoop.scheduleCallback(
                in: .nanoseconds(timeout.nanoseconds),
                handler: LoopTimer { [self] in
                    upstreamTimer = nil
                    guard id == exchangeID, attemptOpen, let cluster = self.cluster else { return }
                    if !cluster.spec.policy.releaseOnTimeout, !responseStarted, requestComplete,
                        let connection = upstream
                    {
                        // `release_on_timeout: false`: the balancer counts the attempt until the backend's answer
                        // arrives, and learns its whole latency.
                        upstream = nil
                        let orphan = OrphanedExchange(
                            cluster: cluster,
                            endpoint: endpoint,
                            started: started,
                            loop: loop
                        )
                        attemptFailed(.timeout, releasingBalancer: false)
                        connection.orphan(orphan)
                        return
                    }
                    upstreamFailed(from: upstream, .timeout)
                }
            )
        }
        // The newest idle connection, unless it idled past the pool's limit (the backend may be closing it).
        let uptime = NIODeadline.now().uptimeNanoseconds
        let limit = UInt64(max(0, configuration.upstreamIdleTimeout.nanoseconds))
        let oldest = uptime > limit ? uptime - limit : 0
        while let pooled = loop.pools[backend].checkout() {
            guard pooled.idleSince >= oldest else {
                pooled.close()
                continue
            }
            shared.metrics.reused[backend].increment()
            attach(pooled)
            return
        }
        connect()
    }

    /// The request ends without an upstream answer, refused by a policy before its attempt went out: 503 if it was
    /// the first attempt; a refused retry ends the request with the last failure's answer.
    private func finishLocally(_ rejection: Rejection, at now: SimInstant) {
        guard let cluster else { return }
        releaseRetry(at: now)
        cluster.edge.callFinished(success: false, at: now)
        loop.pending -= 1
        self.cluster = nil
        if attempts > 1 {
            loop.shared.metrics.rejections[rejection.rawValue].increment()
            answerFailure(lastFailure)
        } else {
            respondLocally(rejection)
        }
    }

    /// The request header that carries a call's remaining time, in whole milliseconds, to the next hop (and from the
    /// client, whose deadline the proxy then keeps if it is sooner than its own), as gRPC's `grpc-timeout` does.
    static let deadlineHeader = "x-meshsim-deadline-ms"

    /// What a header line (with its CRLF) says of the deadline.
    enum DeadlineLine: Equatable {
        /// Another header.
        case notDeadline
        /// `x-meshsim-deadline-ms` with a whole number of milliseconds in 0...10^9.
        case milliseconds(Int64)
        /// `x-meshsim-deadline-ms` with anything else (empty, negative, not a number, too large).
        case malformed
    }

    /// Reads a `x-meshsim-deadline-ms` line (name case-insensitive).
    static func deadlineMilliseconds(_ line: ByteBuffer) -> DeadlineLine {
        let name = deadlineHeader.utf8
        guard line.readableBytes > name.count else { return .notDeadline }
        return line.withUnsafeReadableBytes { bytes -> DeadlineLine in
            for (i, expected) in name.enumerated() {
                var byte = bytes[i]
                if byte >= 65 && byte <= 90 { byte += 32 }
                if byte != expected { return .notDeadline }
            }
            guard bytes[name.count] == UInt8(ascii: ":") else { return .notDeadline }
            var value: Int64 = 0
            var digits = 0
            for byte in bytes[(name.count + 1)...] {
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"):
                    value = value * 10 + Int64(byte - UInt8(ascii: "0"))
                    digits += 1
                    if digits > 10 { return .malformed }
                case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n"):
                    continue
                default:
                    return .malformed
                }
            }
            return digits > 0 && value <= 1_000_000_000 ? .milliseconds(value) : .malformed
        }
    }

    /// The failure of the last attempt, answered if no retry follows.
    private var lastFailure = AttemptOutcome.upstreamError

    /// A retry admitted by the budget has ended: its place goes back.
    private func releaseRetry(at now: SimInstant) {
        guard retryHeld, let cluster else { return }
        retryHeld = false
        cluster.edge.retryFinished(at: now)
    }

    /// The retry-policy view of a failed attempt.
    private static func failure(_ outcome: AttemptOutcome) -> AttemptFailure {
        switch outcome {
        case .response(let status): return .httpStatus(status)
        case .connectFailure: return .connectFailure
        case .upstreamError, .cancelled: return .reset
        case .timeout: return .perTryTimeout
        }
    }

    /// The current attempt failed with `outcome` before anything was answered: it ends (breaker, throttle, outlier
    /// detection learn it; the balancer lets go unless `releasingBalancer` is false), then the cluster's retry
    /// policy, budget and backoff decide whether the request goes out again; otherwise the client gets the
    /// failure (502, or 504 for a timeout).
    private func attemptFailed(_ outcome: AttemptOutcome, releasingBalancer: Bool = true) {
        guard let cluster else { return }
        endAttempt(outcome, releasingBalancer: releasingBalancer)
        let now = loop.now()
        releaseRetry(at: now)
        lastFailure = outcome
        if replayable && requestComplete && !responseStarted && phase != .closing && context != nil {
            let decision = cluster.edge.afterFailure(
                attemptsMade: attempts,
                failure: Self.failure(outcome),
                deadline: callDeadline,
                backoff: &backoff,
                at: now
            )
            if follow(decision, cluster: cluster) { return }
        } else {
            // The budget still learns of the failed attempt, as the simulator's call does.
            var none: Backoff?
            _ = cluster.edge.afterFailure(
                attemptsMade: Int.max,
                failure: Self.failure(outcome),
                deadline: .none,
                backoff: &none,
                at: now
            )
        }
        endCall(success: false, at: now)
        answerFailure(outcome)
    }

    /// Follows the retry decision for a failed attempt: returns whether the request goes out again.
    private func follow(_ decision: RetryDecision, cluster: ClusterState) -> Bool {
        switch decision {
        case .retry(let wait, let holdsBudget):
            retryHeld = holdsBudget
            retryAfter(wait)
            return true
        case .hedge:
            retryAfter(.zero)
            return true
        case .budgetDenied:
            loop.shared.metrics.retriesDenied[cluster.index].increment()
            return false
        case .finish:
            return false
        }
    }

    /// Sends the request again after `wait` (the backoff's draw).
    private func retryAfter(_ wait: SimDuration) {
        guard wait > .zero, let context else {
            startAttempt(isRetry: true, at: loop.now())
            return
        }
        let id = exchangeID
        upstreamTimer = try? context.eventLoop.scheduleCallback(
            in: .nanoseconds(wait.nanoseconds),
            handler: LoopTimer { [self] in
                upstreamTimer = nil
                guard id == exchangeID, !attemptOpen, cluster != nil else { return }
                startAttempt(isRetry: true, at: loop.now())
            }
        )
    }

    /// Opens a new upstream connection for the current exchange.
    private func connect() {
        guard let context else { return }
        let id = exchangeID
        let backend = self.backend
        let loop = self.loop
        let connection = UpstreamConnection(loop: loop, backend: backend)
        let clusterIndex = cluster?.index ?? 0
        loop.shared.metrics.opened[backend].increment()
        let timeout = configuration.upstreamTimeout.map { TimeAmount.nanoseconds($0.nanoseconds) } ?? .seconds(10)
        ClientBootstrap(group: context.eventLoop)
            .channelOption(.autoRead, value: false)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try loop.shared.addUpstreamTLS(to: channel.pipeline.syncOperations, cluster: clusterIndex)
                    try channel.pipeline.syncOperations.addHandler(connection)
                }
            }
            .connect(to: loop.shared.backendAddresses[backend])
            .whenComplete { [self] result in
                switch result {
                case .success:
                    if id == exchangeID, cluster != nil, upstream == nil, connection.isOpen {
                        attach(connection)
                    } else {
                        connection.close()
                    }
                case .failure:
                    if id == exchangeID, cluster != nil, upstream == nil { upstreamFailed(from: nil, .connectFailure) }
                }
            }
    }

    /// Sends the current request on `connection`.
    private func attach(_ connection: UpstreamConnection) {
        upstream = connection
        connection.begin(for: self, requestIsHead: isHeadMethod)
        connection.write(outgoing)
        outgoing = ByteBuffer()
        connection.flush()
        readIfWanted()
    }

    // MARK: - Responses (called by the upstream connection)

    /// The response head arrived: pass it on, hop-by-hop lines dropped, saying whether the connection stays open.
    ///
    /// - Complexity: O(head length), one buffer.
    func responseHead(_ head: HTTPForwardHead) {
        guard let context else { return }
        if head.status >= 500, replayable, requestComplete, let cluster, let connection = upstream {
            // A 5xx ends the attempt; the retry policy decides whether the client sees it or the request goes out
            // again (then this response is read and dropped, and its connection pooled).
            endAttempt(.response(status: head.status))
            let now = loop.now()
            releaseRetry(at: now)
            let decision = cluster.edge.afterFailure(
                attemptsMade: attempts,
                failure: .httpStatus(head.status),
                deadline: callDeadline,
                backoff: &backoff,
                at: now
            )
            if decision.sendsAgain {
                upstream = nil
                connection.orphan(OrphanedExchange(cluster: nil, endpoint: 0, started: 0, loop: loop))
            }
            if follow(decision, cluster: cluster) { return }
        }
        responseStarted = true
        status = head.status
        // The client's connection closes after this response when it asked so, when the response runs to the
        // upstream's close, or when its request body has not fully arrived (it cannot be told from the next request).
        closeAfterResponse = !clientKeepAlive || head.framing == .untilClose || !requestComplete || loop.stopping
        var out = ByteBuffer()
        out.reserveCapacity(head.bytes.readableBytes + 32)
        out.writeImmutableBuffer(head.bytes.getSlice(at: head.startLine.lowerBound, length: head.startLine.count)!)
        out.writeStaticString("\r\n")
        for line in head.forwardedLines {
            out.writeImmutableBuffer(head.bytes.getSlice(at: line.lowerBound, length: line.count)!)
        }
        if closeAfterResponse {
            out.writeStaticString("Connection: close\r\n")
        } else if clientHTTP10 {
            out.writeStaticString("Connection: keep-alive\r\n")
        }
        out.writeStaticString("\r\n")
        context.write(wrapOutboundOut(out), promise: nil)
    }

    /// Response body bytes arrived: pass them on.
    ///
    /// - Complexity: O(1); the bytes are not copied.
    func responseBody(_ bytes: ByteBuffer) {
        context?.write(wrapOutboundOut(bytes), promise: nil)
    }

    /// Flushes what was written to the client.
    func flushResponse() { context?.flush() }

    /// The response ended; `reusable`: the upstream connection may carry another request.
    ///
    /// - Complexity: O(1) plus the cluster's end-of-attempt hook and any pipelined bytes.
    func responseEnded(from connection: UpstreamConnection, reusable: Bool) {
        guard connection === upstream else { return }
        upstream = nil
        endExchange(.response(status: status))
        connection.release(reusable: reusable && requestComplete)
        guard let context else { return }
        if closeAfterResponse {
            phase = .closing
            context.writeAndFlush(wrapOutboundOut(ByteBuffer())).whenComplete { [channel = context.channel] _ in
                channel.close(promise: nil)
            }
            return
        }
        context.flush()
        phase = .idle
        reader.reset()
        armTimer(configuration.idleTimeout)
        process()
        readIfWanted()
    }

    /// The upstream failed (no connection, broken, malformed, or timed out): the request goes out again if the
    /// retry policy says so; otherwise 502 or 504 if nothing was sent yet, else the client connection is closed.
    func upstreamFailed(from connection: UpstreamConnection?, _ outcome: AttemptOutcome) {
        guard cluster != nil, attemptOpen else { return }
        if let connection, connection !== upstream { return }
        let connection = upstream
        upstream = nil
        connection?.close()
        attemptFailed(outcome)
    }

    /// Answers a failed exchange: 502 or 504 if nothing was sent yet, else the client connection is closed.
    private func answerFailure(_ outcome: AttemptOutcome) {
        guard let context else { return }
        phase = .closing
        if responseStarted {
            context.flush()
            context.close(promise: nil)
        } else {
            let answer: LocalAnswer = outcome == .timeout ? .gatewayTimeout : .badGateway
            context.writeAndFlush(wrapOutboundOut(answer.encoded)).whenComplete { [channel = context.channel] _ in
                channel.close(promise: nil)
            }
        }
    }

    /// The request body was malformed mid-way: the upstream connection is dropped; 400 if nothing was answered yet.
    private func requestFailed() {
        let connection = upstream
        upstream = nil
        if cluster != nil { endExchange(.cancelled) }
        connection?.close()
        if responseStarted {
            phase = .closing
            context?.close(promise: nil)
        } else {
            reject(.badRequest)
        }
    }

    /// The current request ends with `outcome`: its attempt (if one is out) and the call.
    private func endExchange(_ outcome: AttemptOutcome) {
        guard cluster != nil else { return }
        endAttempt(outcome)
        endCall(success: !outcome.isFailure, at: loop.now())
    }

    /// Counts the end of the current attempt on its cluster (the balancer lets go unless `releasingBalancer` is
    /// false; the breaker, throttle and outlier detection learn the outcome) and in the metrics.
    private func endAttempt(_ outcome: AttemptOutcome, releasingBalancer: Bool = true) {
        guard attemptOpen, let cluster else { return }
        attemptOpen = false
        let now = loop.now()
        let latency = SimDuration(nanoseconds: max(0, Int64(NIODeadline.now().uptimeNanoseconds &- started)))
        let (ejections, opened) = cluster.attemptEnded(
            endpoint: endpoint,
            outcome: outcome,
            latency: latency,
            pool: pool,
            isRetry: attempts > 1,
            releasingBalancer: releasingBalancer,
            at: now
        )
        pool = .none
        let metrics = loop.shared.metrics
        if ejections > 0 { metrics.ejections[cluster.index].increment(by: Int64(ejections)) }
        if opened { metrics.breakerOpens[cluster.index].increment() }
        metrics.requests[cluster.index][endpoint][outcome.label].increment()
        if case .response = outcome { metrics.latency[cluster.index][endpoint].recordNanoseconds(latency.nanoseconds) }
        upstreamTimer?.cancel()
        upstreamTimer = nil
    }

    /// Whether the authorization rules let the caller (its mutual-TLS identity) send `head` to `cluster`'s service.
    private func isAuthorized(_ head: HTTPForwardHead, _ authorization: AuthorizationPolicy, _ cluster: ProxyCluster)
        -> Bool
    {
        let path = head.bytes.withUnsafeReadableBytes { bytes in
            let target = UnsafeRawBufferPointer(rebasing: bytes[head.path])
            let end = target.firstIndex(of: UInt8(ascii: "?")) ?? target.count
            return String(decoding: UnsafeRawBufferPointer(rebasing: target[..<end]), as: UTF8.self)
        }
        return authorization.allows(caller: peer, service: cluster.service ?? cluster.name, path: path)
    }

    /// The current request has ended: the budget learns how, and it is forgotten.
    private func endCall(success: Bool, at now: SimInstant) {
        guard let cluster else { return }
        releaseRetry(at: now)
        cluster.edge.callFinished(success: success, at: now)
        loop.pending -= 1
        self.cluster = nil
        upstreamTimer?.cancel()
        upstreamTimer = nil
    }

    // MARK: - Local answers

    /// Answers a request the proxy refuses itself, then closes.
    private func reject(_ rejection: Rejection) {
        respondLocally(rejection)
    }

    private func respondLocally(_ rejection: Rejection) {
        loop.shared.metrics.rejections[rejection.rawValue].increment()
        cancelTimer()
        guard let context else { return }
        phase = .closing
        let answer: LocalAnswer
        switch rejection {
        case .badRequest: answer = .badRequest
        case .headerTooLarge: answer = .headerTooLarge
        case .headerTimeout, .bodyTimeout: answer = .requestTimeout
        case .noRoute: answer = .notFound
        case .overload, .noEndpoint, .rateLimited, .throttled, .breakerOpen: answer = .unavailable
        case .deadlineExpired: answer = .gatewayTimeout
        case .forbidden: answer = .forbidden
        }
        context.writeAndFlush(wrapOutboundOut(answer.encoded)).whenComplete { [channel = context.channel] _ in
            channel.close(promise: nil)
        }
    }

    // MARK: - Timers

    /// Starts the current phase's timeout: the header timeout while a head is awaited, the idle timeout between
    /// requests, the body timeout between body reads.
    ///
    /// - Complexity: O(1); schedules a callback only when none is armed early enough.
    private func armTimer(_ duration: SimDuration) {
        guard let context else { return }
        let due = NIODeadline.now().uptimeNanoseconds &+ UInt64(max(0, duration.nanoseconds))
        deadline = due
        if timer != nil && timerAt <= due { return }
        timer?.cancel()
        schedule(at: due, on: context.eventLoop)
    }

    private func schedule(at due: UInt64, on eventLoop: any EventLoop) {
        timerAt = due
        timer = try? eventLoop.scheduleCallback(
            at: .uptimeNanoseconds(due),
            handler: LoopTimer { [self] in timerFired() }
        )
    }

    /// Ends the current phase's timeout (the armed callback, if any, finds nothing due and stops).
    private func cancelTimer() {
        deadline = nil
    }

    private func timerFired() {
        timer = nil
        guard let context, let due = deadline else { return }
        let now = NIODeadline.now().uptimeNanoseconds
        if now < due {
            // The phase changed since the callback was armed: wait for the current deadline.
            schedule(at: due, on: context.eventLoop)
            return
        }
        deadline = nil
        switch phase {
        case .idle:
            // An idle keep-alive connection (or one that never sent a byte) is closed silently, as nginx does.
            phase = .closing
            context.close(promise: nil)
        case .head:
            respondLocally(.headerTimeout)
        case .body:
            let limit = UInt64(max(0, configuration.bodyTimeout.nanoseconds))
            let bodyDue = lastBodyRead &+ limit
            if now < bodyDue {
                armTimer(.nanoseconds(Int64(bodyDue - now)))
            } else {
                bodyTimedOut()
            }
        case .waiting, .closing:
            break
        }
    }

    /// The request body paused longer than the body timeout: 408 if nothing was answered yet, else close; the
    /// upstream connection is dropped.
    private func bodyTimedOut() {
        let connection = upstream
        upstream = nil
        if cluster != nil { endExchange(.cancelled) }
        connection?.close()
        if responseStarted {
            loop.shared.metrics.rejections[Rejection.bodyTimeout.rawValue].increment()
            phase = .closing
            context?.close(promise: nil)
        } else {
            respondLocally(.bodyTimeout)
        }
    }

    /// Closes the connection once its current exchange, if any, has ended (shutdown).
    func closeWhenIdle() {
        guard let context else { return }
        if cluster == nil {
            phase = .closing
            context.close(promise: nil)
        }
    }

    /// Closes the connection now (shutdown past the drain time).
    func closeNow() {
        context?.close(promise: nil)
    }
}

/// The answers the proxy gives itself, encoded once.
enum LocalAnswer {
    case badRequest, headerTooLarge, requestTimeout, notFound, unavailable, badGateway, gatewayTimeout, forbidden

    var encoded: ByteBuffer {
        switch self {
        case .badRequest: return Self.table[0]
        case .headerTooLarge: return Self.table[1]
        case .requestTimeout: return Self.table[2]
        case .notFound: return Self.table[3]
        case .unavailable: return Self.table[4]
        case .badGateway: return Self.table[5]
        case .gatewayTimeout: return Self.table[6]
        case .forbidden: return Self.table[7]
        }
    }

    /// `100 Continue`, an interim answer to `Expect: 100-continue`.
    static let continueInterim = ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\n")

    private static let table: [ByteBuffer] = [
        ("400 Bad Request", "bad request\n"),
        ("431 Request Header Fields Too Large", "header too large\n"),
        ("408 Request Timeout", "request timeout\n"),
        ("404 Not Found", "no route\n"),
        ("503 Service Unavailable", "no upstream available\n"),
        ("502 Bad Gateway", "upstream failed\n"),
        ("504 Gateway Timeout", "upstream timed out\n"),
        ("403 Forbidden", "RBAC: access denied\n"),
    ].map { status, body in
        ByteBuffer(
            string: "HTTP/1.1 \(status)\r\nServer: meshsim-proxy\r\nContent-Type: text/plain\r\nContent-Length: "
                + "\(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        )
    }
}
