;;;; streamdb-tests.asd -- FiveAM tests of the StreamDb Lisp system.
;;;; Run them with tests/lisp/run.sh (see the comment at its top).

(defsystem "streamdb-tests"
  :description "Tests of the streamdb system against the real libstreamdb"
  :depends-on ("streamdb" "fiveam" "yason")
  :serial t
  :components ((:file "tests")))
