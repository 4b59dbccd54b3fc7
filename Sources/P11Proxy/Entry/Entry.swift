// Entry: one static function per PKCS#11 function, taking the caller number first. The
// per-caller tables' closures land here. The slot- and session-routed ones are generated
// (Generated/Forwarding.generated.swift); the ones in this folder are the hand-written list.
enum Entry {}
