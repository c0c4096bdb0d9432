// Values the pages share with the server, in one place. The block between the markers is plain JSON:
// tests/api/test_config_js.py reads it and checks every value against the Python code it mirrors.

// CONFIG-JSON-START
export const CONFIG = {
  "paddingModes": ["zeros", "reflect", "replicate", "circular", "partial"],
  "outputMappings": ["clip", "abs", "stretch", "rescale"],
  "maxFilterSide": 1024,
  "lectureImage": [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]],
  "lecturePool": [[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]],
  "maxBodyBytes": 16777216,
  "maxStretchGain": 8.0
};
// CONFIG-JSON-END
