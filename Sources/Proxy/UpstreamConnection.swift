//===----------------------------------------------------------------------===//
// meshsim — Proxy
//===----------------------------------------------------------------------===//

import LiveHTTP
import NIOCore
import SimCore

/// One keep-alive connection to a backend: carries one exchange at a time for a ``DownstreamConnection``, parses the
/// response head and passes the response on as it arrives; idle, it waits in its loop's pool.
///
/// Reads only while its client can take more bytes (backpressure): `autoRead` is off and each read is asked for.
final class UpstreamConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let loop: ProxyLoop
    /// The backend index.
    let backend: Int
    private var context: ChannelHandlerContext?
    /// The exchange it carries, or `nil` while idle or closing.
    private(set) var owner: DownstreamConnection?
    /// An exchange whose client was answered 504 while the balancer keeps counting it (`release_on_timeout:
    /// false`): the response is read and dropped, and its end releases the balancer.
    private var orphan: OrphanedExchange?
    private var reader: HTTPHeadReader
    private var body = HTTPBodyForwarder(.none)
    private var buffer = ByteBuffer()
    private var headRead = false
    private var requestWasHead = false
    private var responseKeepAlive = false
    /// Idle in the pool.
    private(set) var pooled = false
    private(set) var isOpen = false
    /// When it went idle (uptime ns).
    private(set) var idleSince: UInt64 = 0

    init(loop: ProxyLoop, backend: Int) {
        self.loop = loop
        self.backend = backend
        reader = HTTPHeadReader(
            maxHeadBytes: loop.shared.configuration.maxHeadBytes,
            maxHeaderCount: loop.shared.configuration.maxHeaderCount
        )
    }

    /// Whether a write would be buffered without bound (the peer is slow).
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        isOpen = true
        loop.upstream[ObjectIdentifier(self)] = self
    }

    func channelInactive(context: ChannelHandlerContext) {
        isOpen = false
        loop.upstream[ObjectIdentifier(self)] = nil
        if pooled {
            pooled = false
            loop.pools[backend].remove(self)
        }
        if let owner {
            self.owner = nil
            if headRead && body.endsAtClose {
                owner.responseEnded(from: self, reusable: false)
            } else {
                owner.upstreamFailed(from: self, .upstreamError)
            }
        }
        if let orphan {
            self.orphan = nil
            orphan.end()
        }
        self.context = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Starts carrying an exchange for `owner`.
    func begin(for owner: DownstreamConnection, requestIsHead: Bool) {
        self.owner = owner
        pooled = false
        headRead = false
        requestWasHead = requestIsHead
        reader.reset()
        readIfWanted()
    }

    /// Goes on reading the current response for `exchange` after its client was answered: the bytes are dropped,
    /// the end (or a failure) releases the balancer with the whole latency, and a clean end returns the connection
    /// to the pool.
    func orphan(_ exchange: OrphanedExchange) {
        owner = nil
        orphan = exchange
        readIfWanted()
    }

    /// Writes request bytes (flushed by ``flush()``).
    func write(_ bytes: ByteBuffer) {
        context?.write(wrapOutboundOut(bytes), promise: nil)
    }

    /// Flushes written request bytes.
    func flush() { context?.flush() }

    /// Returns to the pool after a clean response, or closes when the pool is full or the connection is unusable.
    func release(reusable: Bool) {
        owner = nil
        guard reusable, isOpen, buffer.readableBytes == 0, !loop.stopping else {
            close()
            return
        }
        idleSince = NIODeadline.now().uptimeNanoseconds
        if loop.pools[backend].checkin(self) {
            pooled = true
            readIfWanted()
        } else {
            close()
        }
    }

    /// Closes the connection (never returned to the pool).
    func close() {
        owner = nil
        if let orphan {
            self.orphan = nil
            orphan.end()
        }
        if pooled {
            pooled = false
            loop.pools[backend].remove(self)
        }
        context?.close(promise: nil)
    }

    /// Asks for a read while the client takes bytes, or while idle (to see the backend close).
    ///
    /// - Complexity: O(1).
    func readIfWanted() {
        guard let context, isOpen else { return }
        if pooled || orphan != nil || (owner?.isWritable ?? false) { context.read() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        guard let owner else {
            if orphan != nil {
                if buffer.readableBytes == 0 { buffer = incoming } else { buffer.writeBuffer(&incoming) }
                drainOrphan()
                return
            }
            // Bytes on an idle connection: the backend is out of step; never reuse it.
            close()
            return
        }
        if buffer.readableBytes == 0 {
            buffer = incoming
        } else {
            buffer.writeBuffer(&incoming)
        }
        process(owner)
    }

    /// Passes on what the buffer holds of the response: the head once, then body bytes, then the end.
    ///
    /// - Complexity: O(bytes consumed); body bytes are passed as slices, not copied.
    private func process(_ owner: DownstreamConnection) {
        if !headRead {
            let head: HTTPForwardHead?
            do {
                head = try reader.readResponseHead(&buffer, requestWasHead: requestWasHead)
            } catch {
                self.owner = nil
                owner.upstreamFailed(from: self, .upstreamError)
                return
            }
            guard let head else { return }
            guard head.status != 101 else {
                self.owner = nil
                owner.upstreamFailed(from: self, .upstreamError)
                return
            }
            headRead = true
            responseKeepAlive = head.keepAlive
            body = HTTPBodyForwarder(head.framing)
            owner.responseHead(head, from: self)
            guard self.owner === owner else {
                // The exchange let go of the response (a retried 5xx, or a hedge that lost): drop what is buffered
                // of it.
                if orphan != nil { drainOrphan() }
                return
            }
        }
        let slice: ByteBuffer
        do {
            slice = try body.take(&buffer)
        } catch {
            self.owner = nil
            owner.upstreamFailed(from: self, .upstreamError)
            return
        }
        if slice.readableBytes > 0 { owner.responseBody(slice) }
        guard self.owner === owner else { return }
        if body.isComplete {
            // Bytes after the response: the backend sent more than it framed; the connection is not reused.
            let reusable = responseKeepAlive && buffer.readableBytes == 0
            self.owner = nil
            owner.responseEnded(from: self, reusable: reusable)
        }
        if buffer.readableBytes == 0 { buffer.clear() }
    }

    /// Reads and drops the orphaned exchange's response; at its end, releases the balancer and the connection.
    private func drainOrphan() {
        guard let orphan else { return }
        if !headRead {
            let head: HTTPForwardHead?
            do {
                head = try reader.readResponseHead(&buffer, requestWasHead: requestWasHead)
            } catch {
                close()
                return
            }
            guard let head else { return }
            headRead = true
            responseKeepAlive = head.keepAlive
            body = HTTPBodyForwarder(head.framing)
        }
        do {
            _ = try body.take(&buffer)
        } catch {
            close()
            return
        }
        guard body.isComplete else { return }
        self.orphan = nil
        orphan.end()
        release(reusable: responseKeepAlive && buffer.readableBytes == 0)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        owner?.flushResponse()
        readIfWanted()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        owner?.readIfWanted()
        context.fireChannelWritabilityChanged()
    }
}

/// A timed-out exchange whose balancer count stays until the response arrives (`release_on_timeout: false`).
final class OrphanedExchange {
    /// The cluster whose balancer still counts the attempt, or `nil` when nothing waits for the end (a retried 5xx
    /// whose body is only drained).
    let cluster: ClusterState?
    let endpoint: Int
    /// When the attempt was sent (uptime ns).
    let started: UInt64
    let loop: ProxyLoop
    private var ended = false

    init(cluster: ClusterState?, endpoint: Int, started: UInt64, loop: ProxyLoop) {
        self.cluster = cluster
        self.endpoint = endpoint
        self.started = started
        self.loop = loop
    }

    /// The response ended (or the connection broke): the balancer lets go of the attempt and learns its latency.
    func end() {
        guard !ended else { return }
        ended = true
        guard let cluster else { return }
        let latency = SimDuration(nanoseconds: max(0, Int64(NIODeadline.now().uptimeNanoseconds &- started)))
        cluster.releaseBalancer(endpoint: endpoint, latency: latency, at: loop.now())
    }
}
