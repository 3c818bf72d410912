//===----------------------------------------------------------------------===//
// meshsim — Live
//===----------------------------------------------------------------------===//

import LiveHTTP
import NIOCore
import Spec

/// The canned answers of an emulated backend, encoded once.
enum BackendAnswer {
    case ok, serverError, unavailable, badRequest, headerTooLarge, health, requestTimeout, forbidden

    /// The status line and body.
    var parts: (status: String, body: String) {
        switch self {
        case .ok: return ("200 OK", "ok\n")
        case .health: return ("200 OK", "healthy\n")
        case .serverError: return ("500 Internal Server Error", "error\n")
        case .unavailable: return ("503 Service Unavailable", "queue full\n")
        case .badRequest: return ("400 Bad Request", "bad request\n")
        case .headerTooLarge: return ("431 Request Header Fields Too Large", "header too large\n")
        case .requestTimeout: return ("408 Request Timeout", "request timeout\n")
        case .forbidden: return ("403 Forbidden", "RBAC: access denied\n")
        }
    }

    /// The encoded response, keeping the connection open or closing it.
    static func encoded(_ answer: BackendAnswer, keepAlive: Bool) -> ByteBuffer {
        let (status, body) = answer.parts
        let connection = keepAlive ? "" : "Connection: close\r\n"
        return ByteBuffer(
            string: "HTTP/1.1 \(status)\r\nServer: meshsim\r\nContent-Type: text/plain\r\nContent-Length: "
                + "\(body.utf8.count)\r\n\(connection)\r\n\(body)"
        )
    }

    /// Every answer, pre-encoded, indexed by `[answer][keepAlive ? 1 : 0]`.
    static let table: [[ByteBuffer]] = [
        ok, serverError, unavailable, badRequest, headerTooLarge, health, requestTimeout, forbidden,
    ].map {
        [encoded($0, keepAlive: false), encoded($0, keepAlive: true)]
    }

    /// The index into ``table``.
    var index: Int {
        switch self {
        case .ok: return 0
        case .serverError: return 1
        case .unavailable: return 2
        case .badRequest: return 3
        case .headerTooLarge: return 4
        case .health: return 5
        case .requestTimeout: return 6
        case .forbidden: return 7
        }
    }
}

/// One connection to an emulated replica: parses requests one at a time and answers each in order.
///
/// Requests pipelined by the client wait in the read buffer until the previous one is answered (HTTP/1.1 answers
/// in order). Malformed requests get 400 (431 for an oversized head) and the connection is closed; the replica
/// keeps serving its other connections.
///
/// Timeouts, as nginx's: a request head must arrive whole within the header timeout of its first byte (of the accept
/// for a new connection), a body may pause at most the body timeout between reads (both: 408, then close), and a
/// keep-alive connection may idle for the idle timeout between requests (then it is closed silently, as is a new
/// connection that sends nothing). One timer per connection enforces all three lazily: it fires at the earliest
/// moment any of them could expire and re-arms itself, so reads and requests never touch it.
final class BackendConnectionHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let replica: ReplicaRuntime
    private var parser: HTTPRequestParser
    /// The caller's mesh identity (its mutual-TLS certificate's SPIFFE ID names it), once the handshake is done.
    var peer: String?
    private var buffer = ByteBuffer()
    private var context: ChannelHandlerContext?
    /// A request is being served or waits for a worker.
    private var busy = false
    private var keepAlive = true
    private var isHead = false
    private(set) var isOpen = false
    /// Requests read on this connection.
    private var requests = 0
    /// A `Connection: close` answer was sent: nothing more is read or answered.
    private var closing = false
    /// ``processBuffer()`` is on the stack: an answer given synchronously lets its loop go on instead of recursing.
    private var processing = false
    /// Reading is paused because too many bytes wait behind a request in service.
    private var readPaused = false

    /// Where the connection is between requests, for the timeouts.
    private enum Phase {
        /// Accepted, nothing read yet (the header timeout runs from the accept).
        case fresh
        /// Between requests on a keep-alive connection.
        case idle
        /// Part of a request head has arrived.
        case head
        /// A request body is arriving.
        case body
        /// A request is in service (no client timeout).
        case busy
    }

    private var phase = Phase.fresh
    /// When the phase started (for a body: the last read), in uptime ns.
    private var phaseStart: UInt64 = 0
    /// The connection's timer, while armed.
    private var timer: NIOScheduledCallback?

    /// The most bytes buffered behind a request in service before reading pauses (backpressure on the client).
    static let maxBufferedBytes = 64 * 1024

    init(replica: ReplicaRuntime) {
        self.replica = replica
        self.parser = HTTPRequestParser(
            maxHeadBytes: replica.maxHeadBytes,
            healthPath: replica.healthPath,
            capturesPath: replica.authorization != nil
        )
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        isOpen = true
        replica.connections[ObjectIdentifier(self)] = context.channel
        let now = replica.loop.now.uptimeNanoseconds
        phaseStart = now
        armTimer(now: now)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        isOpen = false
        replica.connections[ObjectIdentifier(self)] = nil
        self.context = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let incoming = unwrapInboundIn(data)
        switch phase {
        case .fresh, .idle:
            phase = .head
            phaseStart = replica.loop.now.uptimeNanoseconds
        case .body:
            phaseStart = replica.loop.now.uptimeNanoseconds
        case .head, .busy:
            break
        }
        if buffer.readableBytes == 0 {
            buffer = incoming
        } else {
            var incoming = incoming
            buffer.writeBuffer(&incoming)
        }
        if busy && !readPaused && buffer.readableBytes > Self.maxBufferedBytes {
            readPaused = true
            context.channel.setOption(.autoRead, value: false).whenFailure { _ in }
        }
        processBuffer()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Handles the buffered requests until one must wait for a worker.
    private func processBuffer() {
        guard !processing else { return }
        processing = true
        defer { processing = false }
        while !busy, isOpen, !closing {
            let request: HTTPRequestParser.Request?
            do {
                request = try parser.parse(&buffer)
            } catch .headerTooLarge {
                reject(.headerTooLarge)
                return
            } catch {
                reject(.badRequest)
                return
            }
            guard let request else { break }
            phase = .busy
            requests += 1
            let limit = replica.maxRequestsPerConnection
            keepAlive = request.keepAlive && (limit == 0 || requests < limit)
            isHead = request.isHead
            busy = true
            if request.isHealthCheck {
                respond(.health)
            } else if let authorization = replica.authorization,
                !authorization.allows(caller: peer, service: replica.replica.service, path: request.path ?? "/")
            {
                // The server side of the mesh denies the call before the service does any work (Istio answers
                // `RBAC: access denied` with a 403).
                replica.counts.denied += 1
                respond(.forbidden)
            } else {
                replica.admit(self)
            }
        }
        if !busy && !closing && isOpen { notePhaseBetweenRequests() }
        // Drop the reference to a consumed read buffer, so the channel's receive-buffer pool can reuse it.
        if buffer.readableBytes == 0 {
            buffer = emptyBuffer
        } else if buffer.readerIndex > 4096 {
            buffer.discardReadBytes()
        }
        if readPaused && !busy, let context {
            readPaused = false
            context.channel.setOption(.autoRead, value: true).whenFailure { _ in }
        }
    }

    /// Sets the phase once no request is in service: a body or head is arriving, or the connection idles.
    ///
    /// - Complexity: O(1); reads the clock only when the phase changes (about once per request).
    private func notePhaseBetweenRequests() {
        if parser.isReadingBody {
            if phase != .body {
                phase = .body
                phaseStart = replica.loop.now.uptimeNanoseconds
            }
        } else if buffer.readableBytes > 0 {
            if phase != .head {
                phase = .head
                phaseStart = replica.loop.now.uptimeNanoseconds
            }
        } else if phase != .idle && phase != .fresh {
            phase = .idle
            phaseStart = replica.loop.now.uptimeNanoseconds
        }
    }

    /// When the current phase times out (uptime ns), or `nil` while a request is in service.
    private var deadline: UInt64? {
        let limits = replica.timeouts
        switch phase {
        case .fresh, .head: return phaseStart &+ limits.header
        case .body: return phaseStart &+ limits.body
        case .idle: return phaseStart &+ limits.idle
        case .busy: return nil
        }
    }

    /// Arms the timer for the current deadline, but no later than the shortest timeout from `now`: a phase that
    /// begins before it fires cannot end earlier, so phase changes never need to move the timer.
    private func armTimer(now: UInt64) {
        guard let context else { return }
        let fire = min(deadline ?? .max, now &+ replica.timeouts.shortest)
        timer = try? context.eventLoop.scheduleCallback(
            at: .uptimeNanoseconds(fire),
            handler: ConnectionTimer(connection: self)
        )
    }

    /// The timer fired: close the connection if its phase is overdue, or re-arm.
    fileprivate func timerFired() {
        timer = nil
        guard isOpen, !closing, let context else { return }
        let now = replica.loop.now.uptimeNanoseconds
        guard let deadline, now >= deadline else {
            armTimer(now: now)
            return
        }
        switch phase {
        case .fresh, .idle:
            closing = true
            context.close(promise: nil)
        case .head, .body:
            // 408, then close at once: a client too slow to send is not waited on to read.
            keepAlive = false
            isHead = false
            busy = true
            closing = true
            replica.counts.clientErrors += 1
            let answer = BackendAnswer.table[BackendAnswer.requestTimeout.index][0]
            context.writeAndFlush(wrapOutboundOut(answer), promise: nil)
            context.close(promise: nil)
        case .busy:
            armTimer(now: now)
        }
    }

    private func reject(_ answer: BackendAnswer) {
        keepAlive = false
        isHead = false
        busy = true
        replica.counts.clientErrors += 1
        write(answer)
    }

    /// Sends the answer to the current request, then reads the next.
    func respond(_ answer: BackendAnswer) {
        guard isOpen, busy else { return }
        switch answer {
        case .ok: replica.counts.ok += 1
        case .serverError, .unavailable: replica.counts.serverErrors += 1
        default: break
        }
        write(answer)
        busy = false
        if keepAlive { processBuffer() }
    }

    private func write(_ answer: BackendAnswer) {
        guard let context else { return }
        var response = BackendAnswer.table[answer.index][keepAlive ? 1 : 0]
        if isHead {
            // A HEAD answer has the headers only.
            let bodyBytes = answer.parts.body.utf8.count
            response = response.getSlice(at: response.readerIndex, length: response.readableBytes - bodyBytes)!
        }
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(response), promise: nil)
        } else {
            closing = true
            context.writeAndFlush(wrapOutboundOut(response)).whenComplete { _ in context.close(promise: nil) }
        }
    }
}

/// The timeout timer of one connection.
private struct ConnectionTimer: NIOScheduledCallbackHandler, @unchecked Sendable {
    let connection: BackendConnectionHandler
    func handleScheduledCallback(eventLoop: some EventLoop) { connection.timerFired() }
}
