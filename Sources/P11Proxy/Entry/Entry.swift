// Entry: one static function per PKCS#11 function, taking the caller number last. The
// per-caller tables' closures land here. The slot- and session-routed ones are generated
// (Forwarding.generated.swift, here); the other files in this folder are the hand-written list.
enum Entry {}
