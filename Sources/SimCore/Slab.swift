//===----------------------------------------------------------------------===//
// meshsim — SimCore
//===----------------------------------------------------------------------===//

/// A growable array for a simulation's hot per-request state, written in place without copy-on-write checks.
///
/// `Array` checks that its buffer is uniquely referenced on every write through a subscript (`attempts[a].phase =
/// …`), and the model writes its call and attempt records several times per event: those checks, and the
/// reference counting around them, were about a tenth of an M/M/1 run. A slab keeps its elements in memory it owns
/// outright, so an element is read and written through a plain pointer. All copies of a slab are the same slab (a
/// simulation is never copied while it runs); the storage is freed with the last copy.
///
/// Indices are checked (one comparison against the current count): an index outside `0..<count` traps, never reads
/// stray memory, even in `slab[f()]` where `f` appends to the slab.
public struct Slab<Element> {
    /// The elements' memory and count. Its fields are read and written on every access, so they carry no runtime
    /// exclusivity check: a slab is used by one thread, and no access to a field outlives the statement making it.
    @usableFromInline
    final class Storage {
        @usableFromInline @exclusivity(unchecked) var base: UnsafeMutablePointer<Element>
        @usableFromInline @exclusivity(unchecked) var count = 0
        @usableFromInline @exclusivity(unchecked) var capacity: Int

        init(capacity: Int) {
            self.capacity = Swift.max(capacity, 1)
            base = .allocate(capacity: self.capacity)
        }

        deinit {
            base.deinitialize(count: count)
            base.deallocate()
        }

        /// Doubles the capacity, moving the elements.
        @usableFromInline
        func grow() {
            let larger = capacity * 2
            let moved = UnsafeMutablePointer<Element>.allocate(capacity: larger)
            moved.moveInitialize(from: base, count: count)
            base.deallocate()
            base = moved
            capacity = larger
        }
    }

    @usableFromInline let storage: Storage

    /// An empty slab with room for `capacity` elements.
    public init(capacity: Int = 16) {
        storage = Storage(capacity: capacity)
    }

    /// How many elements there are.
    @inlinable public var count: Int { storage.count }

    /// How many elements fit before the slab grows.
    public var capacity: Int { storage.capacity }

    /// Whether the slab is empty.
    @inlinable public var isEmpty: Bool { storage.count == 0 }

    /// The element at `index`, read and written in place.
    ///
    /// - Complexity: O(1), no allocation and no uniqueness check.
    @inlinable
    public subscript(index: Int) -> Element {
        unsafeAddress {
            precondition(UInt(bitPattern: index) < UInt(bitPattern: storage.count), "slab index out of range")
            return UnsafePointer(storage.base + index)
        }
        nonmutating unsafeMutableAddress {
            precondition(UInt(bitPattern: index) < UInt(bitPattern: storage.count), "slab index out of range")
            return storage.base + index
        }
    }

    /// Adds `element` at the end, doubling the storage when it is full.
    ///
    /// - Complexity: amortised O(1).
    @inlinable
    public func append(_ element: Element) {
        let storage = self.storage
        if storage.count == storage.capacity { storage.grow() }
        (storage.base + storage.count).initialize(to: element)
        storage.count += 1
    }

    /// Removes and returns the last element, if any.
    ///
    /// - Complexity: O(1).
    @inlinable
    public func popLast() -> Element? {
        let storage = self.storage
        guard storage.count > 0 else { return nil }
        storage.count -= 1
        return (storage.base + storage.count).move()
    }
}

extension Slab: RandomAccessCollection {
    public var startIndex: Int { 0 }
    public var endIndex: Int { storage.count }
    public var indices: Range<Int> { 0..<storage.count }
}

/// A first-in first-out queue in a growable ring, read and written in place (the companion of `Slab`).
///
/// Copies of a ring are the same ring; it is used by one thread.
public struct Ring<Element> {
    @usableFromInline
    final class Storage {
        @usableFromInline @exclusivity(unchecked) var base: UnsafeMutablePointer<Element>
        @usableFromInline @exclusivity(unchecked) var head = 0
        @usableFromInline @exclusivity(unchecked) var count = 0
        /// A power of two, so that positions wrap with a mask.
        @usableFromInline @exclusivity(unchecked) var capacity: Int

        init(capacity: Int) {
            var size = 16
            while size < capacity { size <<= 1 }
            self.capacity = size
            base = .allocate(capacity: size)
        }

        deinit {
            for k in 0..<count { (base + ((head + k) & (capacity - 1))).deinitialize(count: 1) }
            base.deallocate()
        }

        /// Doubles the capacity, moving the elements to the start.
        @usableFromInline
        func grow() {
            let larger = capacity * 2
            let moved = UnsafeMutablePointer<Element>.allocate(capacity: larger)
            for k in 0..<count { (moved + k).moveInitialize(from: base + ((head + k) & (capacity - 1)), count: 1) }
            base.deallocate()
            base = moved
            head = 0
            capacity = larger
        }
    }

    @usableFromInline let storage: Storage

    /// An empty ring with room for `capacity` elements before it grows.
    public init(capacity: Int = 16) { storage = Storage(capacity: capacity) }

    /// How many elements wait.
    @inlinable public var count: Int { storage.count }

    /// Whether none waits.
    @inlinable public var isEmpty: Bool { storage.count == 0 }

    /// The bytes the ring holds (its capacity).
    public var storageBytes: Int { storage.capacity * MemoryLayout<Element>.stride }

    /// The oldest element, if any.
    @inlinable public var first: Element? {
        storage.count == 0 ? nil : storage.base[storage.head]
    }

    /// Adds `element` behind the others.
    ///
    /// - Complexity: amortised O(1).
    @inlinable
    public func append(_ element: Element) {
        let storage = self.storage
        if storage.count == storage.capacity { storage.grow() }
        (storage.base + ((storage.head + storage.count) & (storage.capacity - 1))).initialize(to: element)
        storage.count += 1
    }

    /// Removes and returns the oldest element, if any.
    ///
    /// - Complexity: O(1).
    @inlinable
    public func removeFirst() -> Element? {
        let storage = self.storage
        guard storage.count > 0 else { return nil }
        let element = (storage.base + storage.head).move()
        storage.head = (storage.head + 1) & (storage.capacity - 1)
        storage.count -= 1
        return element
    }
}
