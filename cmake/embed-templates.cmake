# Generate a C source holding files as a struct render_builtin array, so the
# egressd binary never depends on files found at run time: the built-in
# templates (templates/*.yaml -> render_builtins) and the CRD schemas
# (daemon/render/crd-schemas.json -> render_crd_files).
#   cmake -DINPUT_DIR=... -DOUTPUT=... [-DPATTERN=*.yaml] [-DARRAY=render_builtins]
#         -P embed-templates.cmake
if(NOT DEFINED PATTERN)
  set(PATTERN "*.yaml")
endif()
if(NOT DEFINED ARRAY)
  set(ARRAY "render_builtins")
endif()
file(GLOB files RELATIVE ${INPUT_DIR} ${INPUT_DIR}/${PATTERN})
list(SORT files)
set(out "/* Generated from ${PATTERN} by cmake/embed-templates.cmake. Do not edit. */\n")
string(APPEND out "#include \"render/render-int.h\"\n\n")
string(APPEND out "const struct render_builtin ${ARRAY}[] = {\n")
foreach(f IN LISTS files)
  file(READ ${INPUT_DIR}/${f} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "\\\\x\\1" escaped "${hex}")
  string(LENGTH "${hex}" hexlen)
  math(EXPR len "${hexlen} / 2")
  string(APPEND out "    {\"${f}\", \"${escaped}\", ${len}},\n")
endforeach()
string(APPEND out "    {NULL, NULL, 0},\n};\n")
file(WRITE ${OUTPUT}.tmp "${out}")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different ${OUTPUT}.tmp ${OUTPUT})
