local H = dofile("spec/helper.lua")
local wippy = H.wippy

describe("the wippy module", function()
  it("has a version string", function()
    assert.is_string(wippy.version)
    assert.matches("^%d+%.%d+%.%d+", wippy.version)
  end)

  it("is the same table when required again", function()
    assert.equals(wippy, require("wippy"))
  end)

  it("serves funcs as require('wippy.funcs') and require('funcs')", function()
    assert.equals(wippy.funcs, require("wippy.funcs"))
    assert.equals(wippy.funcs, require("funcs"))
    assert.is_function(require("funcs").call)
  end)

  it("has a unique null sentinel equal only to itself", function()
    assert.equals(wippy.null, wippy.null)
    assert.not_nil(wippy.null)
    assert.not_equals(false, wippy.null)
  end)

  it("tells error objects from other values", function()
    local err = H.call_err("nowhere:nothing")
    assert.is_true(wippy.errors.is(err))
    assert.is_false(wippy.errors.is("NOT_FOUND"))
    assert.is_false(wippy.errors.is({}))
    assert.is_false(wippy.errors.is(nil))
  end)
end)
