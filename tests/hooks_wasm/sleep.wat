;; Hostile: process-xcom sleeps for an hour through WASI (monotonic-clock subscribe-duration,
;; then pollable.block), the way a language runtime's sleep does. A host call that blocks
;; is out of reach of epoch interruption, so podrun must bound the sleep itself.
(component
  (type $poll-t
    (instance
      (export (;0;) "pollable" (type (sub resource)))
      (type (;1;) (borrow 0))
      (type (;2;) (func (param "self" 1)))
      (export (;0;) "[method]pollable.block" (func (type 2)))))
  (import "wasi:io/poll@0.2.0" (instance $poll (type $poll-t)))
  (alias export $poll "pollable" (type $pollable))
  (type $clock-t
    (instance
      (type (;0;) u64)
      (export (;1;) "duration" (type (eq 0)))
      (alias outer 1 $pollable (type (;2;)))
      (export (;3;) "pollable" (type (eq 2)))
      (type (;4;) (own 3))
      (type (;5;) (func (param "when" 1) (result 4)))
      (export (;0;) "subscribe-duration" (func (type 5)))))
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock (type $clock-t)))

  (core module $libc
    (memory (export "memory") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024)))
  (core instance $libc (instantiate $libc))

  (core func $subscribe (canon lower (func $clock "subscribe-duration")))
  (core func $block (canon lower (func $poll "[method]pollable.block")))
  (core instance $wasifns (export "subscribe" (func $subscribe)) (export "block" (func $block)))

  (core module $main
    (import "env" "memory" (memory 1))
    (import "wasi" "subscribe" (func $subscribe (param i64) (result i32)))
    (import "wasi" "block" (func $block (param i32)))
    (data (i32.const 256) "\22slept\22")
    (func (export "run") (param i32 i32 i32 i32) (result i32)
      ;; One hour, in nanoseconds.
      (call $block (call $subscribe (i64.const 3600000000000)))
      ;; result<string, string>: ok("\"slept\"") in the return area at 16.
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) (i32.const 256))
      (i32.store (i32.const 24) (i32.const 7))
      (i32.const 16)))
  (core instance $main (instantiate $main (with "env" (instance $libc)) (with "wasi" (instance $wasifns))))
  (func $process-xcom (param "a" string) (param "ctx" string) (result (result string (error string)))
    (canon lift (core func $main "run") (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (instance $process-xcom-i (export "process-xcom" (func $process-xcom)))
  (export "podrun:hooks/process-xcom@0.1.0" (instance $process-xcom-i))
)
