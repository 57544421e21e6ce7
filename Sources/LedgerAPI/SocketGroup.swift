import Foundation
import LedgerCore

/// The group `api.socket_group` names, checked when `serve` starts, before the socket is
/// made: it exists on this host, and the daemon may give its socket to it.
enum SocketGroup {
  static func resolve(_ name: String) throws -> gid_t {
    let gid: gid_t
    if let number = gid_t(name) {
      gid = number
    } else {
      var entry = group()
      var found: UnsafeMutablePointer<group>?
      var buffer = [CChar](repeating: 0, count: 16_384)
      guard getgrnam_r(name, &entry, &buffer, buffer.count, &found) == 0, found != nil else {
        throw InputError(field: "api.socket_group", rule: "'\(name)' is not a group of this host")
      }
      gid = entry.gr_gid
    }
    // A process may give a file it owns to a group it belongs to; root to any.
    guard geteuid() == 0 || getegid() == gid || memberships().contains(gid) else {
      throw InputError(
        field: "api.socket_group",
        rule:
          "the daemon is not a member of group '\(name)', so it cannot give the socket to it (under systemd: a drop-in with SupplementaryGroups=\(name) and PrivateUsers=no; see docs/api.md)"
      )
    }
    return gid
  }

  /// The process's supplementary groups.
  static func memberships() -> [gid_t] {
    let count = getgroups(0, nil)
    guard count > 0 else { return [] }
    var groups = [gid_t](repeating: 0, count: Int(count))
    let read = getgroups(count, &groups)
    return read > 0 ? Array(groups.prefix(Int(read))) : []
  }
}
