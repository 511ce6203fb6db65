;; Hostile: imports WASI's environment and arguments and reports how many it got, as
;; {"env":N,"args":M} from process-xcom (N, M capped at 9). podrun's empty WASI gives 0 and 0.
(component

  (import "wasi:cli/environment@0.2.0" (instance $wenv
    (export "get-environment" (func (result (list (tuple string string)))))
    (export "get-arguments" (func (result (list string))))))


  ;; Memory and a bump allocator (the canonical ABI's realloc), shared by the core modules.
  (core module $libc
    (memory (export "memory") 1)
    (global $bump (mut i32) (i32.const 4096))
    (func (export "realloc") (param $old i32) (param $oldsz i32) (param $align i32) (param $new i32) (result i32)
      (local $p i32) (local $end i32)
      (local.set $p (i32.and (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get $align))))
      (local.set $end (i32.add (local.get $p) (local.get $new)))
      (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
        (then
          (if (i32.eq (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end)
                                                                 (i32.mul (memory.size) (i32.const 65536)))
                                                         (i32.const 16))
                                              (i32.const 1)))
                      (i32.const -1))
            (then unreachable))))
      (global.set $bump (local.get $end))
      (local.get $p)))
  (core instance $libc (instantiate $libc))


  (core func $getenv (canon lower (func $wenv "get-environment") (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core func $getargs (canon lower (func $wenv "get-arguments") (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core instance $wasifns (export "env" (func $getenv)) (export "args" (func $getargs)))

  (core module $main
    (import "env" "memory" (memory 1))
    (import "env" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))

    (import "wasi" "env" (func $env (param i32)))
    (import "wasi" "args" (func $args (param i32)))

    ;; result<string, string> in the return area at 16: tag, ptr, len.
    (func $ok (param $p i32) (param $l i32) (result i32)
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) (local.get $p))
      (i32.store (i32.const 24) (local.get $l))
      (i32.const 16))
    (func $err (param $p i32) (param $l i32) (result i32)
      (i32.store8 (i32.const 16) (i32.const 1))
      (i32.store (i32.const 20) (local.get $p))
      (i32.store (i32.const 24) (local.get $l))
      (i32.const 16))

    (data (i32.const 256) "{\22env\22:0,\22args\22:0}")
    (func $digit (param $n i32) (result i32)
      (i32.add (i32.const 0x30) (select (i32.const 9) (local.get $n) (i32.gt_u (local.get $n) (i32.const 9)))))
    (func (export "run") (param i32 i32 i32 i32) (result i32)
      (call $env (i32.const 64))
      (call $args (i32.const 72))
      (i32.store8 (i32.const 263) (call $digit (i32.load (i32.const 68))))
      (i32.store8 (i32.const 272) (call $digit (i32.load (i32.const 76))))
      (call $ok (i32.const 256) (i32.const 18)))
  )
  (core instance $main (instantiate $main (with "env" (instance $libc)) (with "wasi" (instance $wasifns))))
  (func $process-xcom (param "a" string) (param "ctx" string) (result (result string (error string)))
    (canon lift (core func $main "run") (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (instance $process-xcom-i (export "process-xcom" (func $process-xcom)))
  (export "podrun:hooks/process-xcom@0.1.0" (instance $process-xcom-i))
)
