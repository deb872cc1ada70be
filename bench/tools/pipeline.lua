-- wrk script: HTTP/1.1 pipelining. Each connection sends DEPTH requests for
-- the URL's path in one write and waits for all DEPTH responses before
-- sending the next batch (wrk counts every response as a request, and
-- records one latency per batch).
--
--   wrk -t1 -c64 -d5s --latency -s bench/tools/pipeline.lua URL -- DEPTH
--
-- The batch is built once, in init(); request() only returns it.
init = function(args)
   local depth = tonumber(args[1] or "16")
   local batch = {}
   for i = 1, depth do
      batch[i] = wrk.format()
   end
   pipelined = table.concat(batch)
end

request = function()
   return pipelined
end
