-- wrk script of `python -m bench`: one request per call, chosen by the first script argument.
--
--   paths FILE            GET a random line of FILE (one path per line)
--   post TYPE             POST /relation with a new random parent and child under TYPE
--   connect FILE          PATCH a random list path of FILE: connect one new child at the start
--   set FILE N            PUT a random list path of FILE: set N new random children
--   mixed READS LISTS     70 % GET a line of READS, 20 % POST, 10 % connect into a list of LISTS
--   mix90 IDS             90 % GET a line of IDS (/relation/{id}), 10 % PUT a new comment on one
--
-- Headers given with -H (Api-Key) are kept; bodies add Content-Type: application/json.

local mode = "paths"
local paths, lists = nil, nil
local relation_type = "umbDocument"
local set_size = 1000

local function lines(file)
  local out = {}
  for line in io.lines(file) do
    if #line > 0 then out[#out + 1] = line end
  end
  assert(#out > 0, "no lines in " .. tostring(file))
  return out
end

local function guid()
  local r = math.random
  return string.format("%04x%04x-%04x-4%03x-%04x-%04x%04x%04x",
    r(0, 65535), r(0, 65535), r(0, 65535), r(0, 4095), r(32768, 49151), r(0, 65535), r(0, 65535), r(0, 65535))
end

local function json_headers()
  local headers = {}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["Content-Type"] = "application/json"
  return headers
end

local body_headers = nil

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
  mode = args[1] or "paths"
  if mode == "paths" then
    paths = lines(args[2])
  elseif mode == "post" then
    relation_type = args[2] or relation_type
  elseif mode == "connect" then
    lists = lines(args[2])
  elseif mode == "set" then
    lists = lines(args[2])
    set_size = tonumber(args[3] or "1000")
  elseif mode == "mixed" or mode == "mix90" then
    paths = lines(args[2])
    if args[3] and args[3] ~= "-" then lists = lines(args[3]) end
  else
    error("unknown mode " .. tostring(mode))
  end
  body_headers = json_headers()
end

local function get()
  return wrk.format("GET", paths[math.random(1, #paths)])
end

local function post()
  local body = string.format('{"parentId":"%s","childId":"%s","relationTypeAlias":"%s"}',
    guid(), guid(), relation_type)
  return wrk.format("POST", "/relation", body_headers, body)
end

local function connect()
  local body = string.format('{"connect":[{"id":"%s","position":{"start":true}}]}', guid())
  return wrk.format("PATCH", lists[math.random(1, #lists)], body_headers, body)
end

local function set()
  local items = {}
  for i = 1, set_size do items[i] = '"' .. guid() .. '"' end
  local body = '{"set":[' .. table.concat(items, ",") .. ']}'
  return wrk.format("PUT", lists[math.random(1, #lists)], body_headers, body)
end

local function comment()
  local body = string.format('{"comment":"%s"}', guid())
  return wrk.format("PUT", paths[math.random(1, #paths)], body_headers, body)
end

function request()
  if mode == "paths" then return get() end
  if mode == "mix90" then
    if math.random() < 0.9 then return get() end
    return comment()
  end
  if mode == "post" then return post() end
  if mode == "connect" then return connect() end
  if mode == "set" then return set() end
  local roll = math.random()
  if roll < 0.7 then return get() end
  if roll < 0.9 or lists == nil then return post() end
  return connect()
end
