//===----------------------------------------------------------------------===//
// meshsim — Live
//===----------------------------------------------------------------------===//

import Foundation

/// Names the processes that hold a TCP port, from Linux's `/proc`, so that "port in use" says what to stop.
///
/// The socket's inode comes from `/proc/net/tcp` and `/proc/net/tcp6` (the local-address column ends in the port
/// in hexadecimal); the processes are those with a descriptor `socket:[inode]` in `/proc/<pid>/fd`; the name is
/// `/proc/<pid>/comm`. Processes of other users cannot be seen without privileges: then nothing is named.
public enum PortOwner {
    /// A process that holds a socket.
    public struct Holder: Sendable, Equatable {
        /// The process id.
        public var pid: Int32
        /// Its command name (`/proc/<pid>/comm`).
        public var name: String
    }

    /// The processes holding a listening socket on `port` (or, when none listens, any socket bound to it), by pid.
    ///
    /// - Complexity: O(sockets + descriptors of every process); for error messages only.
    public static func holders(port: Int) -> [Holder] {
        var listening: Set<String> = []
        var bound: Set<String> = []
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
                guard fields.count > 9, let colon = fields[1].lastIndex(of: ":"),
                    Int(fields[1][fields[1].index(after: colon)...], radix: 16) == port
                else { continue }
                let inode = String(fields[9])
                guard inode != "0" else { continue }
                if fields[3] == "0A" { listening.insert(inode) } else { bound.insert(inode) }
            }
        }
        let wanted = listening.isEmpty ? bound : listening
        guard !wanted.isEmpty else { return [] }
        let targets = Set(wanted.map { "socket:[\($0)]" })
        var holders: [Holder] = []
        let processes = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in processes {
            guard let pid = Int32(entry) else { continue }
            let directory = "/proc/\(entry)/fd"
            guard let descriptors = try? FileManager.default.contentsOfDirectory(atPath: directory) else { continue }
            for descriptor in descriptors {
                guard
                    let link = try? FileManager.default.destinationOfSymbolicLink(atPath: directory + "/" + descriptor),
                    targets.contains(link)
                else { continue }
                let name = (try? String(contentsOfFile: "/proc/\(entry)/comm", encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                holders.append(Holder(pid: pid, name: name ?? "?"))
                break
            }
        }
        return holders.sorted { $0.pid < $1.pid }
    }

    /// A sentence naming what holds `port` and how to stop it, e.g. "port 20400 is in use by nginx (pid 1234); stop
    /// it with: kill 1234", or `nil` when no holder can be seen.
    public static func describe(port: Int) -> String? {
        let found = holders(port: port)
        guard !found.isEmpty else { return nil }
        let names = Dictionary(grouping: found, by: \.name).keys.sorted().joined(separator: ", ")
        let pids = found.map { String($0.pid) }
        let label = pids.count == 1 ? "pid" : "pids"
        return "port \(port) is in use by \(names) (\(label) \(pids.joined(separator: ", "))); stop it with: kill "
            + pids.joined(separator: " ")
    }
}
