//===----------------------------------------------------------------------===//
// meshsim — Live
//===----------------------------------------------------------------------===//

import LiveHTTP
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One keep-alive connection of the load generator: at most one request in flight, answers parsed by the lean
/// ``HTTPResponseParser`` straight from the read buffer.
final class LoadConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Its worker (a strong reference: the worker drops its connections when they close, which breaks the cycle).
    let worker: LoadWorker
    private var context: ChannelHandlerContext?
    private var parser = HTTPResponseParser()
    private var buffer = ByteBuffer()
    /// Whether a request is outstanding on it.
    private(set) var busy = false
    /// The outstanding request's intended send time (uptime ns).
    private(set) var intended: UInt64 = 0
    /// When it was written (uptime ns).
    private(set) var sentAt: UInt64 = 0
    /// Set when the request has been settled (timeout) and the connection is being closed.
    private var abandoned = false
    /// The error seen before the close, if any.
    private var lastError: LoadErrorKind?
    /// Set once the connection is being closed: nothing more is parsed or sent.
    private var closing = false
    /// The generator closed it (timeout, protocol error, end of run), not the server.
    private(set) var closedByUs = false
    /// Whether the connection was established (the pool counts it).
    private(set) var established = false

    init(worker: LoadWorker) {
        self.worker = worker
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        established = true
        worker.connectionReady(self, fresh: true)
        context.fireChannelActive()
    }

    /// Writes the request intended at `intended` now.
    ///
    /// - Complexity: O(1); writes the pre-encoded request bytes (no encoding, no allocation).
    @inline(__always)
    func send(intended: UInt64, now: UInt64) {
        guard let context else { return }
        busy = true
        abandoned = false
        self.intended = intended
        sentAt = now
        context.writeAndFlush(wrapOutboundOut(worker.request), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffer.readableBytes == 0 {
            // The common case: parse straight from the read buffer and keep no reference to it, so the channel's
            // receive-buffer pool can reuse it for the next read without allocating.
            consume(&incoming, context: context)
            if incoming.readableBytes > 0 { buffer = incoming }
        } else {
            buffer.writeBuffer(&incoming)
            consume(&buffer, context: context)
            if buffer.readableBytes == 0 { buffer = emptyBuffer }
        }
    }

    /// Parses every complete answer in `bytes`.
    ///
    /// - Complexity: O(bytes), no allocation.
    private func consume(_ bytes: inout ByteBuffer, context: ChannelHandlerContext) {
        while !closing {
            let response: HTTPResponseParser.Response?
            do {
                response = try parser.parse(&bytes)
            } catch {
                lastError = .protocolError
                close(context)
                return
            }
            guard let response else { return }
            guard busy, !abandoned else {
                // An answer nobody asked for, or one that came after its timeout: the connection is unusable.
                close(context)
                return
            }
            busy = false
            if !response.keepAlive { closing = true }
            worker.answered(self, status: response.status, keepAlive: response.keepAlive)
            if !response.keepAlive {
                context.close(promise: nil)
                return
            }
        }
    }

    private func close(_ context: ChannelHandlerContext) {
        closing = true
        closedByUs = true
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        lastError = LoadWorker.classify(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if busy, !abandoned, let response = parser.connectionClosed() {
            busy = false
            worker.answered(self, status: response.status, keepAlive: false)
        }
        let wasBusy = busy && !abandoned
        busy = false
        self.context = nil
        worker.connectionClosed(self, hadRequest: wasBusy, error: lastError ?? .reset)
    }

    /// Gives up on the outstanding request (its timeout was counted) and closes the connection.
    func abandon() {
        abandoned = true
        busy = false
        closing = true
        closedByUs = true
        context?.close(promise: nil)
    }

    /// Closes the connection at the end of the run.
    func close() {
        closedByUs = true
        context?.close(promise: nil)
    }
}

extension LoadWorker {
    /// The error kind of a connect or socket error.
    static func classify(_ error: any Error) -> LoadErrorKind {
        if let io = error as? IOError {
            switch io.errnoCode {
            case ECONNREFUSED: return .refused
            case ECONNRESET, EPIPE, ECONNABORTED: return .reset
            case ETIMEDOUT: return .timeout
            default: return .connect
            }
        }
        if let connection = error as? NIOConnectionError {
            for failure in connection.connectionErrors { return classify(failure.error) }
            return .connect
        }
        if let channel = error as? ChannelError {
            switch channel {
            case .connectTimeout: return .timeout
            case .eof, .ioOnClosedChannel, .alreadyClosed, .outputClosed, .inputClosed: return .reset
            default: return .connect
            }
        }
        return .connect
    }
}

/// A shared empty buffer: assigning it releases a consumed read buffer without allocating a new one.
let emptyBuffer = ByteBuffer()
