package kanon

const debugSearch = false
