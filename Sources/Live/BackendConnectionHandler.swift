//===----------------------------------------------------------------------===//
// meshsim — Live
//===----------------------------------------------------------------------===//

import LiveHTTP
import NIOCore

/// The canned answers of an emulated backend, encoded once.
enum BackendAnswer {
    case ok, serverError, unavailable, badRequest, headerTooLarge, health

    /// The status line and body.
    var parts: (status: String, body: String) {
        switch self {
        case .ok: return ("200 OK", "ok\n")
        case .health: return ("200 OK", "healthy\n")
        case .serverError: return ("500 Internal Server Error", "error\n")
        case .unavailable: return ("503 Service Unavailable", "queue full\n")
        case .badRequest: return ("400 Bad Request", "bad request\n")
        case .headerTooLarge: return ("431 Request Header Fields Too Large", "header too large\n")
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
    static let table: [[ByteBuffer]] = [ok, serverError, unavailable, badRequest, headerTooLarge, health].map {
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
        }
    }
}

/// One connection to an emulated replica: parses requests one at a time and answers each in order.
///
/// Requests pipelined by the client wait in the read buffer until the previous one is answered (HTTP/1.1 answers
/// in order). Malformed requests get 400 (431 for an oversized head) and the connection is closed; the replica
/// keeps serving its other connections.
final class BackendConnectionHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let replica: ReplicaRuntime
    private var parser: HTTPRequestParser
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
    /// Whether the current request waits in the replica's queue.
    var queued = false

    /// The most bytes buffered behind a request in service before reading pauses (backpressure on the client).
    static let maxBufferedBytes = 64 * 1024

    init(replica: ReplicaRuntime) {
        self.replica = replica
        self.parser = HTTPRequestParser(maxHeadBytes: replica.maxHeadBytes, healthPath: replica.healthPath)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        isOpen = true
        replica.connections[ObjectIdentifier(self)] = context.channel
    }

    func channelInactive(context: ChannelHandlerContext) {
        isOpen = false
        replica.connections[ObjectIdentifier(self)] = nil
        if queued {
            // A closed connection's queued request no longer holds a place in the queue.
            queued = false
            if let i = replica.queue.firstIndex(where: { $0 === self }) { replica.queue.remove(at: i) }
        }
        self.context = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let incoming = unwrapInboundIn(data)
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
            requests += 1
            let limit = replica.maxRequestsPerConnection
            keepAlive = request.keepAlive && (limit == 0 || requests < limit)
            isHead = request.isHead
            busy = true
            if request.isHealthCheck {
                respond(.health)
            } else {
                replica.admit(self)
            }
        }
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
