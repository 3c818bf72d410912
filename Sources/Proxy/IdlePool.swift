//===----------------------------------------------------------------------===//
// meshsim — Proxy
//===----------------------------------------------------------------------===//

import DequeModule

/// The idle keep-alive connections to one backend on one event loop, newest last.
///
/// A connection enters only after its response ended cleanly; the newest is reused first (it is the least likely to
/// have been closed by the backend's idle timeout). At most ``capacity`` wait; a connection beyond that is closed.
public struct IdlePool<Connection: AnyObject> {
    /// The most idle connections kept.
    public let capacity: Int
    private(set) var idle = Deque<Connection>()

    /// An empty pool keeping at most `capacity` idle connections.
    public init(capacity: Int) { self.capacity = capacity }

    /// Takes the newest idle connection, if any.
    ///
    /// - Complexity: O(1).
    public mutating func checkout() -> Connection? { idle.popLast() }

    /// Puts `connection` back; `false` when the pool is full (the caller closes it).
    ///
    /// - Complexity: O(1).
    public mutating func checkin(_ connection: Connection) -> Bool {
        guard idle.count < capacity else { return false }
        idle.append(connection)
        return true
    }

    /// Forgets `connection` (it closed while idle); `false` if it was not there.
    ///
    /// - Complexity: O(idle connections).
    @discardableResult
    public mutating func remove(_ connection: Connection) -> Bool {
        guard let i = idle.firstIndex(where: { $0 === connection }) else { return false }
        idle.remove(at: i)
        return true
    }

    /// The number of idle connections.
    public var count: Int { idle.count }
}
