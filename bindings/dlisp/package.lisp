;;;; package.lisp -- packages of the StreamDb Common Lisp system.
;;;;
;;;; STREAMDB is the whole database API.  It shadows CL:SEARCH (its own SEARCH
;;;; returns the paths under a prefix), so a package that uses it must shadow
;;;; SEARCH too, or refer to STREAMDB:SEARCH by its qualified name.
;;;;
;;;; STREAMDB-DCF holds only DCF's five persistence calls, DCF-ERROR and the
;;;; NODE-DATABASE generic function: DCF code can USE it without any clash.

(defpackage #:streamdb
  (:use #:cl)
  (:shadow #:search)
  (:export
   ;; library
   #:*library-path*
   #:load-streamdb-library
   #:library-loaded-p
   #:library-version
   #:strerror
   ;; conditions
   #:streamdb-library-missing
   #:streamdb-library-missing-attempts
   #:streamdb-library-missing-reason
   #:streamdb-error
   #:streamdb-error-code
   #:streamdb-error-kind
   #:streamdb-error-message
   #:streamdb-error-operation
   #:streamdb-io-error
   #:streamdb-not-found
   #:streamdb-invalid
   #:streamdb-internal-error
   #:streamdb-transaction-error
   #:streamdb-corrupt
   #:streamdb-locked
   #:streamdb-too-large
   #:streamdb-full
   #:streamdb-closed
   #:streamdb-out-of-memory
   #:streamdb-busy
   #:streamdb-read-only
   #:streamdb-incompatible
   #:streamdb-not-a-database
   #:streamdb-fatal
   #:streamdb-crypto
   #:streamdb-unsupported
   #:streamdb-exists
   #:streamdb-cancelled
   #:streamdb-would-block
   #:code-condition-class
   #:code-keyword
   ;; databases
   #:database
   #:database-p
   #:database-path
   #:database-open-p
   #:database-snapshot-p
   #:open-db
   #:close-db
   #:with-db
   #:page-size
   #:max-path-length
   #:set-quick-mode
   ;; documents
   #:write-document
   #:get-document
   #:get-document-by-id
   #:read-document-range
   #:document-exists-p
   #:delete-document
   #:delete-by-id
   #:stat
   #:document-info
   #:document-info-id
   #:document-info-version
   #:document-info-size
   #:document-info-stored-size
   #:document-info-crc32c
   #:document-info-created-ns
   #:document-info-modified-ns
   #:document-info-flags
   #:document-info-inline-p
   #:document-info-compressed-p
   #:versions
   ;; streams
   #:document-input-stream
   #:document-output-stream
   #:open-document-stream
   #:with-document-stream
   #:document-stream-length
   #:document-stream-path
   #:open-document-writer
   #:with-document-writer
   #:document-writer-id
   ;; search
   #:search
   #:list-directory
   #:do-paths
   #:map-paths
   #:count-documents
   ;; ids
   #:get-id-by-path
   #:bind-to-path
   #:unbind-path
   #:list-paths
   #:id-to-string
   #:string-to-id
   ;; transactions, snapshots, maintenance
   #:begin-transaction
   #:commit-transaction
   #:rollback-transaction
   #:with-transaction
   #:snapshot
   #:close-snapshot
   #:with-snapshot
   #:flush
   #:stats
   #:cache-stats
   #:check
   #:compact
   #:verify
   #:get-stat
   #:features
   ;; asynchronous reads
   #:document-future
   #:get-document-async
   #:future-ready-p
   #:future-wait
   #:future-result
   #:future-cancel
   #:free-future
   #:with-document-future
   ;; DCF
   #:node-database
   #:dcf-error
   #:dcf-error-code
   #:dcf-error-c-code
   #:dcf-error-message
   #:dcf-error-cause
   #:dcf-db-insert
   #:dcf-db-query
   #:dcf-db-delete
   #:dcf-db-search
   #:dcf-db-flush
   #:encode-for-schema
   #:decode-for-schema))

(defpackage #:streamdb-dcf
  (:use)
  (:import-from #:streamdb
                #:node-database
                #:dcf-error #:dcf-error-code #:dcf-error-c-code
                #:dcf-error-message #:dcf-error-cause
                #:dcf-db-insert #:dcf-db-query #:dcf-db-delete
                #:dcf-db-search #:dcf-db-flush
                #:encode-for-schema #:decode-for-schema)
  (:export #:node-database
           #:dcf-error #:dcf-error-code #:dcf-error-c-code
           #:dcf-error-message #:dcf-error-cause
           #:dcf-db-insert #:dcf-db-query #:dcf-db-delete
           #:dcf-db-search #:dcf-db-flush
           #:encode-for-schema #:decode-for-schema))
